import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, notFound } from '../domain/errors.ts';
import { normaliseVmHost } from '../domain/validate.ts';
import type { Store, VmRow } from '../store/index.ts';
import { type GatewayKey, gatewayInstall } from './gateway-key.ts';
import { newId, now } from './secrets.ts';
import { parsePublicKey } from './ssh-public-key.ts';
import type { PageQuery } from './types.ts';

/**
 * A VM to register, as the route schemas checked it: `defaultUser` already a Linux user name,
 * `port` within 1-65535, strings bounded. `host` and `hostKey` are checked here.
 */
export interface NewVm {
  name?: string | null;
  host: string;
  port?: number;
  defaultUser?: string;
  hostKey: string;
}

/** The fields of a VM a PATCH may change; absent ones stay. `name: null` clears the name. */
export type VmPatch = Partial<NewVm>;

export interface VmOut {
  id: string;
  name: string | null;
  host: string;
  port: number;
  defaultUser: string;
  hostKey: string;
  createdAt: string;
}

const vmOut = (r: VmRow): VmOut => ({ id: r.id, name: r.name, host: r.host, port: r.port, defaultUser: r.default_user, hostKey: r.host_key, createdAt: r.created_at });

function host(v: string): string {
  const h = normaliseVmHost(v);
  if (!h) throw invalid('host must be a DNS name, an IPv4 address or an IPv6 address');
  return h;
}

/** The host key's stored form: `type base64`, checked like a user's key (no DSA, RSA >= 2048). */
const hostKey = (v: string): string => parsePublicKey(v, 'hostKey').line;

/**
 * The VM registry: machines Palisade does not run but lets identities reach through the SSH
 * gateway, each registered by an account (`account:use`) and managed by it or an admin
 * (`vm:manage`; a VM of another account looks missing). A VM id is a UUID, which fits the
 * Identity API's VM id shape, so grants name registered VMs as they name any other.
 */
export class Vms {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
    private readonly gatewayKey: GatewayKey,
  ) {}

  /** A VM the caller manages; notFound (VM_NOT_FOUND) when missing or another account's. */
  private async manageable(p: Principal, vmId: string): Promise<VmRow> {
    await this.access.requireAccount(p);
    await this.access.require(p, 'vm:manage', { kind: 'vm', vmId });
    const row = await this.store.findVm(this.store.db, vmId);
    if (!row) throw notFound(`VM not found: ${vmId}`, 'VM_NOT_FOUND'); // deleted in between
    return row;
  }

  async create(p: Principal, input: NewVm): Promise<VmOut> {
    const u = await this.access.requireAccount(p);
    const row: VmRow = {
      id: newId(),
      account_id: u.userId,
      name: input.name?.trim() || null,
      host: host(input.host),
      port: input.port ?? 22,
      default_user: input.defaultUser ?? 'root',
      host_key: hostKey(input.hostKey),
      created_at: now(),
    };
    // a machine is one account's: its host key registered by another account is refused (the
    // key is what a VM proves; the gateway's per-account keys are what keeps others out)
    if (await this.store.hostKeyRegisteredElsewhere(this.store.db, row.host_key, u.userId)) throw conflict('This host key is already registered', 'VM_ALREADY_REGISTERED');
    await this.store.insertVm(this.store.db, row);
    return vmOut(row);
  }

  /** A page of VMs: an admin's lists every account's, anyone else's its own. */
  async list(p: Principal, q: PageQuery): Promise<{ vms: VmOut[]; total: number; offset: number }> {
    const u = await this.access.requireAccount(p);
    const { limit = 100, offset = 0 } = q;
    const all = await this.access.isServerAdmin(p);
    const { rows, total } = await this.store.listVms(this.store.db, { accountId: all ? undefined : u.userId, limit, offset });
    return { vms: rows.map(vmOut), total, offset };
  }

  async get(p: Principal, vmId: string): Promise<VmOut> {
    return vmOut(await this.manageable(p, vmId));
  }

  /** Changes the fields given; every one is checked before anything is written. */
  async update(p: Principal, vmId: string, patch: VmPatch): Promise<VmOut> {
    const row = await this.manageable(p, vmId);
    const set: Partial<VmRow> = {};
    if (patch.name !== undefined) set.name = patch.name?.trim() || null;
    if (patch.host !== undefined) set.host = host(patch.host);
    if (patch.port !== undefined) set.port = patch.port;
    if (patch.defaultUser !== undefined) set.default_user = patch.defaultUser;
    if (patch.hostKey !== undefined) set.host_key = hostKey(patch.hostKey);
    if (set.host_key && (await this.store.hostKeyRegisteredElsewhere(this.store.db, set.host_key, row.account_id))) throw conflict('This host key is already registered', 'VM_ALREADY_REGISTERED');
    if (Object.keys(set).length) await this.store.updateVm(this.store.db, row.id, set);
    return vmOut({ ...row, ...set });
  }

  /** Deletes a VM; grants naming its id stay (VM ids are opaque to the Identity API) and open nothing. */
  async delete(p: Principal, vmId: string): Promise<void> {
    const row = await this.manageable(p, vmId);
    if (!(await this.store.deleteVm(this.store.db, row.id))) throw notFound(`VM not found: ${vmId}`, 'VM_NOT_FOUND');
  }

  /** What a VM installs to trust the gateway; for any account (the key is public). */
  async gatewayKeyFor(p: Principal): Promise<{ publicKey: string; fingerprint: string; authorizedKeysLine: string; sshdConfig: string }> {
    // the caller's own account's key: a VM trusts only the account that registers it
    const u = await this.access.requireAccount(p);
    const pair = this.gatewayKey.get(u.userId);
    return { publicKey: pair.publicKey, fingerprint: pair.fingerprint, ...gatewayInstall(pair) };
  }
}
