import type { Migration, MigrationProvider } from 'kysely';
import * as m001 from './001-initial.ts';
import * as m002 from './002-groups-and-user-grants.ts';
import * as m003 from './003-triggers-and-deliveries.ts';
import * as m004 from './004-repo-sync.ts';
import * as m005 from './005-sync-state.ts';
import * as m006 from './006-ssh-keys-and-vms.ts';
import * as m007 from './007-token-expiry-ref-rules-audit.ts';
import * as m008 from './008-repository-type.ts';
import * as m009 from './009-web-sessions.ts';
import * as m010 from './010-leases.ts';

/** Numbered migrations, listed by hand so that bundling or a missing file cannot skip one. */
export const migrationProvider: MigrationProvider = {
  async getMigrations(): Promise<Record<string, Migration>> {
    return { '001-initial': m001, '002-groups-and-user-grants': m002, '003-triggers-and-deliveries': m003, '004-repo-sync': m004, '005-sync-state': m005, '006-ssh-keys-and-vms': m006, '007-token-expiry-ref-rules-audit': m007, '008-repository-type': m008, '009-web-sessions': m009, '010-leases': m010 };
  },
};
