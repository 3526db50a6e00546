import Type from 'typebox';
import { LINUX_USER_PATTERN, VM_ID_PATTERN } from '../../domain/validate.ts';
import { Empty, errorResponses, Nullable, Paging, Str } from '../common-schemas.ts';

/**
 * Schemas of the VM registry (`/vm/v1`): the machines identities may reach through the SSH
 * gateway. What `host` and `hostKey` mean is checked by the service.
 */

const ok = <T>(schema: T) => ({ 200: schema, ...errorResponses });

const VmParams = Type.Object({ vm: Type.String({ pattern: VM_ID_PATTERN, title: 'VM id', description: 'VM id (a UUID for registered VMs)' }) });

const Name = Nullable(Str(200, { title: 'name', description: 'A name for people (not unique)' }));
const Host = Str(255, { minLength: 1, title: 'host', description: 'DNS name, IPv4 or IPv6 address the gateway dials' });
const Port = Type.Integer({ minimum: 1, maximum: 65535, title: 'port', description: "The VM's sshd port" });
const DefaultUser = Type.String({ pattern: LINUX_USER_PATTERN, title: 'defaultUser', description: 'Linux user a login without one is for' });
const HostKey = Str(8192, { minLength: 1, title: 'hostKey', description: "The VM's OpenSSH public host key line, e.g. the contents of /etc/ssh/ssh_host_ed25519_key.pub (comment dropped)" });

const Vm = Type.Object({
  id: Type.String(),
  name: Nullable(Type.String()),
  host: Type.String(),
  port: Type.Integer(),
  defaultUser: Type.String(),
  hostKey: Type.String({ description: '`type base64`' }),
  createdAt: Type.String(),
});

export const createVm = {
  summary: 'Register a VM (owned by the calling account)',
  body: Type.Object(
    {
      name: Type.Optional(Name),
      host: Host,
      port: Type.Optional(Type.Integer({ minimum: 1, maximum: 65535, default: 22, title: 'port', description: "The VM's sshd port (default 22)" })),
      defaultUser: Type.Optional(Type.String({ pattern: LINUX_USER_PATTERN, default: 'root', title: 'defaultUser', description: 'Linux user a login without one is for (default root)' })),
      hostKey: HostKey,
    },
    { additionalProperties: false },
  ),
  response: ok(Vm),
};
export const listVms = {
  summary: 'List VMs (an admin sees every account\'s)',
  querystring: Type.Object(Paging(1000, 100), { additionalProperties: false }),
  response: ok(Type.Object({ vms: Type.Array(Vm), total: Type.Integer(), offset: Type.Integer() })),
};
export const getVm = { summary: 'One VM', params: VmParams, response: ok(Vm) };
export const updateVm = {
  summary: 'Change a VM (fields given only; `name: null` clears it)',
  params: VmParams,
  body: Type.Object({ name: Type.Optional(Name), host: Type.Optional(Host), port: Type.Optional(Port), defaultUser: Type.Optional(DefaultUser), hostKey: Type.Optional(HostKey) }, { additionalProperties: false }),
  response: ok(Vm),
};
export const deleteVm = { summary: "Delete a VM (grants naming it stay and open nothing)", params: VmParams, response: ok(Empty) };
export const gatewayKey = {
  summary: 'What a VM installs to trust the SSH gateway: its public key, an authorized_keys line and an sshd snippet',
  response: ok(
    Type.Object({
      publicKey: Type.String({ description: '`ssh-ed25519 AAAA… palisade-gateway`' }),
      fingerprint: Type.String({ description: '`SHA256:…`' }),
      authorizedKeysLine: Type.String({ description: 'The line for authorized_keys, with its options' }),
      sshdConfig: Type.String({ description: 'An sshd_config drop-in' }),
    }),
  ),
};
