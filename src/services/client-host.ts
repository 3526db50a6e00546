import ipaddr from 'ipaddr.js';

const known = new Map<string, string>();

/**
 * The host a client address stands for, as the budgets that count clients (process slots,
 * failed sign-ins) key it: an IPv4 address (also when seen as IPv4-mapped IPv6), an IPv6
 * address by its /64 (what one host usually holds), anything unparseable as it came (cut to 64
 * characters). Remembered per address (bounded): every git request asks.
 */
export function clientHost(address: string): string {
  let host = known.get(address);
  if (host === undefined) {
    try {
      const ip = ipaddr.process(address);
      host = ip.kind() === 'ipv6' ? `${(ip as ipaddr.IPv6).parts.slice(0, 4).map((h) => h.toString(16)).join(':')}::/64` : ip.toString();
    } catch {
      host = address.slice(0, 64);
    }
    if (known.size >= 10_000) known.clear();
    known.set(address, host);
  }
  return host;
}
