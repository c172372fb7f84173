// Kubernetes resource quantities as a number of bytes ("2Gi", "500M", "1.5e9"),
// as k8s.io/apimachinery/pkg/api/resource/quantity.go reads them: binary
// suffixes Ki…Ei are powers of 1024, decimal k, M, G, T, P, E powers of 1000,
// or an exponent e/E. kcr reads them in annotations (kcr.io/checkpoint-retention-bytes)
// and its configuration; fractions of a byte are rounded up, as Quantity.Value() does.

const BINARY: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60 };
const DECIMAL: Record<string, number> = { '': 1, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18 };
const QUANTITY = /^([+]?(?:\d+(?:\.\d*)?|\.\d+))(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|[eE][+-]?\d+)?$/;

/** The bytes a quantity names; undefined when it is not a non-negative quantity. */
export function parseQuantityBytes(text: string): number | undefined {
  const m = QUANTITY.exec(text.trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  const suffix = m[2] ?? '';
  const factor = BINARY[suffix] ?? DECIMAL[suffix] ?? (/^[eE]/.test(suffix) ? 10 ** Number(suffix.slice(1)) : undefined);
  if (factor === undefined) return undefined;
  const bytes = Math.ceil(n * factor);
  return Number.isFinite(bytes) ? bytes : undefined;
}
