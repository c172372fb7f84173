// Routing of a Kubernetes REST path: which verb, group/version, resource,
// namespace, name and subresource a request addresses (the API server's RequestInfo).

export interface RequestInfo {
  verb: string;
  group: string;
  version: string;
  /** Resource plural, e.g. `pods`. */
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  path: string;
}

export function requestInfo(method: string, path: string, query: URLSearchParams): RequestInfo | undefined {
  const segs = path.split('/').filter((s, i) => i > 0 || s !== '');
  if (segs[0] === '') segs.shift();
  let group: string;
  let version: string;
  let rest: string[];
  if (segs[0] === 'api' && segs.length >= 3) {
    group = '';
    version = segs[1]!;
    rest = segs.slice(2);
  } else if (segs[0] === 'apis' && segs.length >= 4) {
    group = segs[1]!;
    version = segs[2]!;
    rest = segs.slice(3);
  } else return undefined;
  let legacyWatch = false;
  if (rest[0] === 'watch') {
    legacyWatch = true;
    rest = rest.slice(1);
  }
  let namespace: string | undefined;
  if (rest[0] === 'namespaces' && rest.length >= 3 && rest[2] !== 'status' && rest[2] !== 'finalize') {
    namespace = rest[1];
    rest = rest.slice(2);
  }
  const resource = rest[0];
  if (!resource) return undefined;
  const name = rest[1];
  const subresource = rest[2];
  if (resource === 'namespaces' && name && !namespace) namespace = name;
  const isWatch = legacyWatch || query.get('watch') === 'true' || query.get('watch') === '1';
  let verb: string;
  switch (method) {
    case 'GET':
    case 'HEAD':
      verb = isWatch ? 'watch' : name ? 'get' : 'list';
      break;
    case 'POST':
      verb = 'create';
      break;
    case 'PUT':
      verb = 'update';
      break;
    case 'PATCH':
      verb = 'patch';
      break;
    case 'DELETE':
      verb = name ? 'delete' : 'deletecollection';
      break;
    default:
      verb = method.toLowerCase();
  }
  const info: RequestInfo = { verb, group, version, resource, path };
  if (namespace !== undefined) info.namespace = namespace;
  if (name !== undefined) info.name = name;
  if (subresource !== undefined) info.subresource = subresource;
  return info;
}
