import type { Access } from '../access/index.ts';
import type { Principal } from '../domain/access.ts';
import { conflict, invalid, notFound } from '../domain/errors.ts';
import { isUniqueViolation, type Store, type UserRow, type UsersGroupRow } from '../store/index.ts';
import { newId, now } from './secrets.ts';

const GROUP_RE = /^[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}$/;

export interface GroupWithMembers {
  group: UsersGroupRow;
  members: UserRow[];
}

/** Users groups (seed 002): the server's administration, so every method asks `server:admin`. */
export class Groups {
  constructor(
    private readonly store: Store,
    private readonly access: Access,
  ) {}

  private admin(p: Principal): Promise<unknown> {
    return this.access.require(p, 'server:admin', { kind: 'server' });
  }

  async create(p: Principal, name: string, active: boolean): Promise<UsersGroupRow> {
    await this.admin(p);
    if (!GROUP_RE.test(name)) throw invalid('group_name must be 1-100 of letters, digits, space, . _ - starting with a letter or digit');
    const row: UsersGroupRow = { id: newId(), name, name_key: name.toLowerCase(), active: active ? 1 : 0, created_at: now() };
    try {
      await this.store.insertUsersGroup(this.store.db, row);
    } catch (e) {
      if (isUniqueViolation(e)) throw conflict(`users group ${name} already exists`);
      throw e;
    }
    await this.access.audit.record({ actor: p, action: 'group.create', target: { kind: 'group', id: row.id, name }, detail: { active } });
    return row;
  }

  async find(p: Principal, name: string): Promise<UsersGroupRow | undefined> {
    await this.admin(p);
    return this.store.findUsersGroupByName(this.store.db, name);
  }

  async get(p: Principal, name: string): Promise<UsersGroupRow> {
    const g = await this.find(p, name);
    if (!g) throw notFound(`users group ${name.slice(0, 100)} does not exist`, 'GROUP_NOT_FOUND');
    return g;
  }

  /** One group with its members, or undefined. */
  async findWithMembers(p: Principal, name: string): Promise<GroupWithMembers | undefined> {
    const g = await this.find(p, name);
    return g && (await this.withMembers([g]))[0];
  }

  private async withMembers(groups: UsersGroupRow[]): Promise<GroupWithMembers[]> {
    const members = await this.store.listGroupMembers(this.store.db, groups.map((g) => g.id));
    return groups.map((group) => ({ group, members: members.filter((m) => m.group_id === group.id) }));
  }

  async list(p: Principal): Promise<GroupWithMembers[]> {
    await this.admin(p);
    return this.withMembers(await this.store.listUsersGroups(this.store.db));
  }

  /** Adds a member; `added: false` when it already was one. */
  async addMember(p: Principal, groupName: string, username: string): Promise<{ group: UsersGroupRow; user: UserRow; id: string; added: boolean }> {
    const group = await this.get(p, groupName);
    const user = await this.user(username);
    const existing = await this.store.findMembership(this.store.db, group.id, user.id);
    if (existing) return { group, user, id: existing.id, added: false };
    const id = newId();
    try {
      await this.store.insertMembership(this.store.db, { id, group_id: group.id, user_id: user.id, created_at: now() });
    } catch (e) {
      if (isUniqueViolation(e)) return { group, user, id: (await this.store.findMembership(this.store.db, group.id, user.id))!.id, added: false };
      throw e;
    }
    await this.access.audit.record({ actor: p, action: 'group.member.add', target: { kind: 'group', id: group.id, name: group.name }, detail: { user: user.username } });
    return { group, user, id, added: true };
  }

  /** Removes a member; `removed: false` when it was not one. */
  async removeMember(p: Principal, groupName: string, username: string): Promise<{ group: UsersGroupRow; user: UserRow; removed: boolean }> {
    const group = await this.get(p, groupName);
    const user = await this.user(username);
    const removed = await this.store.deleteMembership(this.store.db, group.id, user.id);
    if (removed) await this.access.audit.record({ actor: p, action: 'group.member.remove', target: { kind: 'group', id: group.id, name: group.name }, detail: { user: user.username } });
    return { group, user, removed };
  }

  private async user(username: string): Promise<UserRow> {
    const u = await this.store.findUserByName(this.store.db, username);
    if (!u) throw notFound(`user ${username.slice(0, 64)} does not exist`, 'USER_NOT_FOUND');
    return u;
  }
}
