import Type, { type TString } from 'typebox';

/**
 * Shapes of the web surface's query strings, path parameters and form bodies (checked by
 * Fastify before a handler runs; what values mean is checked by the services). Form fields
 * arrive as strings; unknown fields are ignored.
 */

const NO_NUL = '^[^\\u0000]*$';
const Str = (maxLength: number, minLength = 0): TString => Type.String({ pattern: NO_NUL, maxLength, minLength });
const Csrf = Type.Optional(Str(100));
const Opt = (maxLength: number) => Type.Optional(Str(maxLength));

export const StaticFile = Type.Object({ file: Str(100) });
export const LoginQuery = Type.Object({ next: Opt(2000) });
export const CsrfOnly = Type.Object({ _csrf: Csrf });
export const LoginBody = Type.Object({ _csrf: Csrf, username: Str(200, 1), password: Str(1024, 1), next: Opt(2000) });
export const NewRepoBody = Type.Object({ _csrf: Csrf, name: Str(255, 1), description: Opt(2000), public: Opt(1) });
export const NewUserBody = Type.Object({ _csrf: Csrf, username: Str(64, 1), email: Opt(320), password: Opt(1024), admin: Opt(1) });
export const UserAction = Type.Object({ username: Str(64, 1), what: Type.Union([Type.Literal('active'), Type.Literal('password'), Type.Literal('api-key')]) });
export const UserActionBody = Type.Object({ _csrf: Csrf, active: Opt(1), password: Opt(1024) });
export const NewGroupBody = Type.Object({ _csrf: Csrf, name: Str(100, 1) });
export const GroupParams = Type.Object({ group: Str(100, 1) });
export const MemberBody = Type.Object({ _csrf: Csrf, username: Str(64, 1) });
export const MemberParams = Type.Object({ group: Str(100, 1), username: Str(64, 1) });
export const IdentityParams = Type.Object({ id: Type.String({ pattern: '^[0-9A-Fa-f-]{36}$' }) });
export const IdentityAction = Type.Object({ id: Type.String({ pattern: '^[0-9A-Fa-f-]{36}$' }), '*': Str(400) });
export const IdentityBody = Type.Object({ _csrf: Csrf, repo: Opt(300), permission: Opt(10), vm: Opt(200), users: Opt(2000) });
export const SshKeyBody = Type.Object({ _csrf: Csrf, publicKey: Str(16_384, 1), title: Opt(200) });
export const KeyParams = Type.Object({ key: Str(64, 1) });
export const VmBody = Type.Object({ _csrf: Csrf, name: Opt(200), host: Str(255, 1), port: Opt(10), defaultUser: Opt(33), hostKey: Str(16_384, 1) });
export const VmParams = Type.Object({ vm: Str(128, 1) });
/** Every query parameter a page under `/` or a repository reads; repeated parameters are refused by their string type. */
export const PageQuery = Type.Object({
  q: Opt(200),
  offset: Type.Optional(Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1 })),
  path: Opt(4096),
  from: Opt(200),
  to: Opt(200),
  branch: Opt(200),
  api_key: Opt(512),
  download: Opt(10),
  plain: Opt(10),
});
