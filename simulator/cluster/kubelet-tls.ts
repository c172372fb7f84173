// The kubelets' serving certificates: a CA generated at run time (never checked in)
// signs each node's serving certificate, as a cluster with serverTLSBootstrap has
// its kubelet certificates signed by the cluster CA. Clients verify a kubelet
// against that CA (the cluster's `kubeletCaFile`); nothing trusts it by default.
// RSA keys come from node:crypto, off the event loop; node-forge writes the
// certificates (node:crypto can read X.509 but not issue it), node:crypto signs them. Key generation costs
// ~0.25 s a key, so the CA and serving keys are made once per process and shared
// by the clusters it starts; every cluster signs its own nodes' certificates.

import { generateKeyPair, randomBytes, sign } from 'node:crypto';
import { promisify } from 'node:util';
import forge from 'node-forge';

const DAY_MS = 86_400_000;
const generateRsa = promisify(generateKeyPair);

export interface KubeletTls {
  /** PEM of the CA that signed every kubelet's serving certificate. */
  caPem: string;
  /** The serving certificate and key of each node (SANs: the node name, localhost, 127.0.0.1). */
  serving: Map<string, { cert: string; key: string }>;
}

interface Keys {
  pub: forge.pki.rsa.PublicKey;
  pem: string;
}

async function rsaKeys(): Promise<Keys> {
  const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: 2048, publicKeyEncoding: { type: 'spki', format: 'pem' }, privateKeyEncoding: { type: 'pkcs8', format: 'pem' } });
  return { pub: forge.pki.publicKeyFromPem(publicKey), pem: privateKey };
}

function certificate(subject: forge.pki.CertificateField[], issuer: forge.pki.CertificateField[], pub: forge.pki.rsa.PublicKey, extensions: object[]): forge.pki.Certificate {
  const c = forge.pki.createCertificate();
  c.serialNumber = '01' + randomBytes(15).toString('hex'); // positive: the first byte's high bit clear
  c.validity.notBefore = new Date(Date.now() - DAY_MS);
  c.validity.notAfter = new Date(Date.now() + 365 * DAY_MS);
  c.publicKey = pub;
  c.setSubject(subject);
  c.setIssuer(issuer);
  c.setExtensions(extensions);
  return c;
}

/** Signs as forge's Certificate.sign does (sha256WithRSAEncryption over the TBS DER), natively: forge's own RSA is ~80 ms a signature. */
function signWith(c: forge.pki.Certificate, issuer: Keys): void {
  c.signatureOid = forge.pki.oids.sha256WithRSAEncryption!;
  c.siginfo.algorithmOid = forge.pki.oids.sha256WithRSAEncryption!;
  // getTBSCertificate is public in node-forge's pki but missing from its typings.
  const tbs = (forge.pki as typeof forge.pki & { getTBSCertificate(c: forge.pki.Certificate): forge.asn1.Asn1 }).getTBSCertificate(c);
  (c as forge.pki.Certificate & { tbsCertificate: forge.asn1.Asn1 }).tbsCertificate = tbs;
  c.signature = sign('sha256', Buffer.from(forge.asn1.toDer(tbs).getBytes(), 'binary'), issuer.pem).toString('binary');
}

const CA_NAME = [{ name: 'commonName', value: 'kcr-simulated-kubelet-ca' }];

let shared: Promise<{ ca: Keys; caPem: string; serving: Keys }> | undefined;

function sharedKeys(): Promise<{ ca: Keys; caPem: string; serving: Keys }> {
  shared ??= Promise.all([rsaKeys(), rsaKeys()]).then(([ca, serving]) => {
    const caCert = certificate(CA_NAME, CA_NAME, ca.pub, [
      { name: 'basicConstraints', cA: true, critical: true },
      { name: 'keyUsage', keyCertSign: true, cRLSign: true, critical: true },
      { name: 'subjectKeyIdentifier' },
    ]);
    signWith(caCert, ca);
    return { ca, caPem: forge.pki.certificateToPem(caCert), serving };
  });
  return shared;
}

export async function kubeletTls(nodes: readonly string[]): Promise<KubeletTls> {
  const { ca, caPem, serving: keys } = await sharedKeys();
  const serving = new Map<string, { cert: string; key: string }>();
  for (const node of nodes) {
    const subject = [
      { name: 'organizationName', value: 'system:nodes' },
      { name: 'commonName', value: `system:node:${node}` },
    ];
    const c = certificate(subject, CA_NAME, keys.pub, [
      { name: 'basicConstraints', cA: false, critical: true },
      { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: node },
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ]);
    signWith(c, ca);
    serving.set(node, { cert: forge.pki.certificateToPem(c), key: keys.pem });
  }
  return { caPem, serving };
}
