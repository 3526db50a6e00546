import { conflict, invalid, notFound } from '../domain/errors.ts';
import { isUniqueViolation, type Store, type UserRow, type UsersGroupRow } from '../store/index.ts';
import { newId, now } from './secrets.ts';

const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

export interface GroupWithMembers {
  group: UsersGroupRow;
  members: UserRow[];
}

/**
 * Users groups (seed 002). Callers check `server:admin` first; these methods
 * only keep the data consistent.
 */
export class Groups {
  constructor(private readonly store: Store) {}

  async create(name: string, active: boolean): Promise<UsersGroupRow> {
    if (!GROUP_RE.test(name)) throw invalid('group_name must be 1-100 of letters, digits, space, . _ - starting with a letter or digit');
    const row: UsersGroupRow = { id: newId(), name, name_key: name.toLowerCase(), active: active ? 1 : 0, created_at: now() };
    try {
      await this.store.insertUsersGroup(this.store.db, row);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`users group ${name} already exists`);
      throw e;
    }
    return row;
  }

  find(name: string): Promise<UsersGroupRow | undefined> {
    return this.store.findUsersGroupByName(this.store.db, name);
  }

  async get(name: string): Promise<UsersGroupRow> {
    const g = await this.find(name);
    if (!g) throw notFound(`users group ${name} does not exist`, 'GROUP_NOT_FOUND');
    return g;
  }

  async withMembers(groups: UsersGroupRow[]): Promise<GroupWithMembers[]> {
    const members = await this.store.listGroupMembers(this.store.db, groups.map((g) => g.id));
    return groups.map((group) => ({ group, members: members.filter((m) => m.group_id === group.id) }));
  }

  async list(): Promise<GroupWithMembers[]> {
    return this.withMembers(await this.store.listUsersGroups(this.store.db));
  }

  /** Adds a member; `added: false` when it already was one. */
  async addMember(group: UsersGroupRow, user: UserRow): Promise<{ id: string; added: boolean }> {
    const existing = await this.store.findMembership(this.store.db, group.id, user.id);
    if (existing) return { id: existing.id, added: false };
    const id = newId();
    try {
      await this.store.insertMembership(this.store.db, { id, group_id: group.id, user_id: user.id, created_at: now() });
    } catch (e) {
      if (isUniqueViolation(e)) return { id: (await this.store.findMembership(this.store.db, group.id, user.id))!.id, added: false };
      throw e;
    }
    return { id, added: true };
  }

  /** Removes a member; false when it was not one. */
  removeMember(group: UsersGroupRow, user: UserRow): Promise<boolean> {
    return this.store.deleteMembership(this.store.db, group.id, user.id);
  }
}
