import dns from 'node:dns/promises';
import net from 'node:net';
import { invalid } from '../domain/errors.ts';

/**
 * The SSRF guard for every URL the server fetches (a repository's
 * `clone_uri`, later sources, imports and webhooks). Only http(s) is allowed,
 * and no host that resolves to a loopback, private, link-local, CGNAT,
 * multicast or unspecified address; `file://` and private addresses only when
 * PALISADE_ALLOW_PRIVATE_URLS=1. Redirects are not followed by the fetch
 * itself (git runs with http.followRedirects=false), so a redirect cannot
 * bypass this check.
 */
export async function checkOutboundUrl(raw: string, allowPrivate: boolean): Promise<URL> {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw invalid(`Invalid URL: ${raw.slice(0, 200)}`);
  }
  if (url.protocol === 'file:') {
    if (!allowPrivate) throw invalid('file:// URLs are not allowed (set PALISADE_ALLOW_PRIVATE_URLS=1 to allow them)');
    if (url.host !== '') throw invalid('file:// URLs must not name a host');
    return url;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw invalid(`URL scheme ${url.protocol} is not allowed; use http(s)`);
  if (allowPrivate) return url;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const addrs = net.isIP(host) ? [host] : (await dns.lookup(host, { all: true, verbatim: true }).catch(() => [])).map((a) => a.address);
  if (addrs.length === 0) throw invalid(`Cannot resolve host ${host}`);
  for (const a of addrs) if (isPrivateAddress(a)) throw invalid(`URL host ${host} resolves to a private or local address; refused`);
  return url;
}

function v4ToInt(a: string): number {
  return a.split('.').reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
}
const V4_BLOCKS: [string, number][] = [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.0.0.0', 24],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
];

/** True for addresses that must not be fetched from: loopback, private, link-local, CGNAT, multicast, reserved. */
export function isPrivateAddress(addr: string): boolean {
  if (net.isIPv4(addr)) {
    const n = v4ToInt(addr);
    return V4_BLOCKS.some(([base, bits]) => (n >>> (32 - bits)) === (v4ToInt(base) >>> (32 - bits)));
  }
  const a = addr.toLowerCase();
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  if (mapped) return isPrivateAddress(mapped[1]!);
  return a === '::' || a === '::1' || /^fe[89ab]/.test(a) || /^f[cd]/.test(a) || a.startsWith('ff');
}
