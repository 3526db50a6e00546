import dns from 'node:dns';
import net from 'node:net';
import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { DomainError } from '../domain/errors.ts';
import type { Store, VmRow } from '../store/index.ts';
import { addressProblem } from './outbound.ts';
import { fingerprintOf } from './ssh-public-key.ts';

/**
 * The SSH gateway's use case: may this caller open this VM as this Linux user, and if so,
 * where exactly does the connection go. The transport (src/ssh/gateway.ts) dials what this
 * returns and nothing else; it gets no VM row and makes no decision of its own.
 */

/** A refusal of a gateway login: its message is one line, safe to show to the client. */
export class GatewayRefusal extends DomainError {
  constructor(reason: string) {
    super('forbidden', reason, 'VM_LOGIN_REFUSED');
    this.name = 'GatewayRefusal';
  }
}

export const isGatewayRefusal = (e: unknown): e is GatewayRefusal => e instanceof GatewayRefusal;

/** What to dial for an allowed VM login. */
export interface VmTarget {
  vmId: string;
  /** the account that registered the VM: the gateway logs in with that account's key */
  accountId: string;
  /** the Linux user the login is for (the VM's default user when none was asked) */
  linuxUser: string;
  /** the host as registered (a name or an address), for logs */
  host: string;
  /** the addresses `host` resolved to, each checked, in the resolver's order: dial these only */
  addresses: string[];
  port: number;
  /** the registered host key: its type (`ssh-ed25519`, …), wire blob and fingerprint */
  hostKey: { type: string; blob: Buffer; fingerprint: string };
}

type Lookup = (host: string) => Promise<{ address: string; family: number }[]>;

export interface GatewayOptions {
  /** PALISADE_ALLOW_PRIVATE_URLS: loopback and link-local VMs too (tests, closed networks) */
  allowPrivate: boolean;
  /** tests swap the resolver; production uses the system's */
  resolve?: Lookup;
}

/**
 * Cloud metadata services that sit inside ranges VMs may use: AWS's IPv6 instance metadata
 * endpoint is a unique-local address. (169.254.169.254 and Alibaba's 100.100.100.200 are
 * link-local and shared address space, refused by their range already.)
 */
const METADATA = new Set(['fd00:ec2::254']);

/**
 * Why the gateway must not dial `addr`, or undefined. The one classification is outbound's
 * `addressProblem`; the gateway's policy on top of it differs in one way: VMs live on private
 * networks, so RFC 1918 (`private`) and unique-local IPv6 (`uniqueLocal`) addresses pass besides
 * public unicast. Everything else (unspecified, loopback, link-local with the metadata address
 * 169.254.169.254, multicast, broadcast, shared address space, reserved, the IPv6 forms that
 * embed one of those) is refused unless `allowPrivate`.
 */
export function vmAddressProblem(addr: string, allowPrivate: boolean): string | undefined {
  const problem = addressProblem(addr);
  if (problem === 'not an IP address') return problem;
  if (allowPrivate) return undefined;
  if (METADATA.has(addr.toLowerCase())) return 'cloud metadata service';
  if (problem === undefined || problem === 'private' || problem === 'uniqueLocal') return undefined;
  return problem;
}

/** The server host key algorithms that can show a registered key of `type`. */
export function hostKeyAlgorithms(type: string): string[] {
  return type === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [type];
}

const systemLookup: Lookup = (host) => dns.promises.lookup(host, { all: true, verbatim: true });

export class Gateway {
  private readonly resolve: Lookup;

  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly opts: GatewayOptions,
  ) {
    this.resolve = opts.resolve ?? systemLookup;
  }

  /**
   * The decision, then the VM row it was about. Throws GatewayRefusal with the decision's own
   * reason: "no grant for this VM" comes before anything about the VM, so a caller without a
   * grant never learns whether a VM exists.
   */
  private async decide(p: Principal, vmId: string, linuxUser: string | undefined): Promise<{ vm: VmRow; linuxUser: string }> {
    const d = await this.access.authorize(p, 'vm:login', { kind: 'vm', vmId, linuxUser });
    if (!d.allowed || !d.linuxUser) throw new GatewayRefusal(d.reason ?? 'not allowed');
    const vm = await this.store.findVm(this.store.db, vmId);
    if (!vm) throw new GatewayRefusal('VM not registered'); // deleted since the decision
    return { vm, linuxUser: d.linuxUser };
  }

  /**
   * Decides `vm:login` for `p` on `vmId` as `linuxUser` (default: the VM's default user) and
   * returns what to dial: the VM's host resolved once, every address checked. Throws
   * GatewayRefusal: the decision's reason ("no grant for this VM", "user X not allowed", "VM
   * not registered", …) or "VM unreachable (…)" when the host does not resolve or resolves to
   * an address the gateway may not dial.
   */
  async open(p: Principal, vmId: string, linuxUser?: string): Promise<VmTarget> {
    const { vm, linuxUser: user } = await this.decide(p, vmId, linuxUser);
    let addresses: string[];
    try {
      addresses = net.isIP(vm.host) ? [vm.host] : (await this.resolve(vm.host)).map((a) => a.address);
    } catch {
      throw new GatewayRefusal('VM unreachable (its host name does not resolve)');
    }
    if (addresses.length === 0) throw new GatewayRefusal('VM unreachable (its host name does not resolve)');
    // every answer is checked, not only the first: a name that resolves to one public and one
    // loopback address is refused, whichever the connection would have used
    for (const a of addresses) if (vmAddressProblem(a, this.opts.allowPrivate)) throw new GatewayRefusal('VM unreachable (its address is one the gateway may not dial)');
    const [type, b64] = vm.host_key.split(' ') as [string, string];
    const blob = Buffer.from(b64, 'base64');
    return { vmId: vm.id, accountId: vm.account_id, linuxUser: user, host: vm.host, addresses, port: vm.port, hostKey: { type, blob, fingerprint: fingerprintOf(blob) } };
  }

  /**
   * Decides again for a live connection to `t`: throws GatewayRefusal when the login is no
   * longer allowed (grant revoked, allowedUsers changed, VM deleted or moved to another
   * account, account deactivated), when it now means another Linux user (the VM's default
   * user changed), or when the registration no longer describes the machine connected to
   * (host, port or host key changed).
   */
  async recheck(p: Principal, t: VmTarget, asked: string | undefined): Promise<void> {
    const { vm, linuxUser } = await this.decide(p, t.vmId, asked);
    if (linuxUser !== t.linuxUser) throw new GatewayRefusal(`the login now means user ${linuxUser}`);
    const [, b64] = vm.host_key.split(' ');
    if (vm.host !== t.host || vm.port !== t.port || b64 !== t.hostKey.blob.toString('base64')) throw new GatewayRefusal('the VM registration changed');
  }
}
