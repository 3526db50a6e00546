import { type Access, explainAction, type Fact, type LevelName, levelName, type RefDecision, type RefUpdate } from '../access/index.ts';
import { Level, type Principal, repoPermOf } from '../domain/access.ts';
import { invalid, notFound } from '../domain/errors.ts';
import { refNameProblem } from '../domain/validate.ts';
import type { RepoRow, Store, UserRow, UsersGroupRow } from '../store/index.ts';
import type { Repos } from './repos.ts';
import { userPrincipal } from './users.ts';
import { now } from './secrets.ts';

/**
 * `repository.*` grants for users and users groups (seed 002). Changing a
 * grant needs admin on the repository, decided by the one decision point
 * through `Repos.get`.
 */
export class Grants {
  constructor(
    private readonly store: Store,
    private readonly repos: Repos,
    private readonly access: Access,
  ) {}

  private record(p: Principal, action: string, repo: RepoRow, detail: Record<string, unknown>): Promise<void> {
    return this.access.audit.record({ actor: p, action, target: { kind: 'repo', id: repo.id, name: repo.name }, detail });
  }

  /**
   * Why a user holds what it holds on a repository: the level and the decision's facts in order
   * (its own grant, its groups' grants by name, ownership, admin, visibility, account state).
   * A user may ask about itself (read needed, so a hidden repository stays hidden); about
   * another user, admin on the repository is needed.
   */
  async explain(p: Principal, repoRef: string, username: string, update?: RefUpdate): Promise<{ repo: RepoRow; user: UserRow; level: LevelName; facts: Fact[]; ref?: RefDecision }> {
    if (update) {
      const problem = refNameProblem(update.ref);
      if (problem) throw invalid(`ref: ${problem}`, 'INVALID_REF');
    }
    const repo = await this.repos.get(p, repoRef, explainAction(p, username));
    const user = await this.user(username);
    const e = await this.access.explain(userPrincipal(user), repo.id, update);
    return { repo, user, level: levelName(e.level), facts: e.facts, ...(e.ref ? { ref: e.ref } : {}) };
  }

  // Who is granted is looked up directly: a repository's admin grants without being a server admin.
  private async user(username: string): Promise<UserRow> {
    const u = await this.store.findUserByName(this.store.db, username);
    if (!u) throw notFound(`user ${username.slice(0, 64)} does not exist`, 'USER_NOT_FOUND');
    return u;
  }

  private async group(name: string): Promise<UsersGroupRow> {
    const g = await this.store.findUsersGroupByName(this.store.db, name);
    if (!g) throw notFound(`users group ${name.slice(0, 100)} does not exist`, 'GROUP_NOT_FOUND');
    return g;
  }

  async grantUser(p: Principal, repoName: string, username: string, level: Level): Promise<{ repo: RepoRow; user: UserRow }> {
    const repo = await this.repos.get(p, repoName, 'repo:admin');
    const user = await this.user(username);
    await this.store.upsertUserGrant(this.store.db, user.id, repo.id, level, now());
    await this.record(p, 'grant.user', repo, { user: user.username, perm: repoPermOf(level) });
    return { repo, user };
  }

  async revokeUser(p: Principal, repoName: string, username: string): Promise<{ repo: RepoRow; user: UserRow; removed: boolean }> {
    const repo = await this.repos.get(p, repoName, 'repo:admin');
    const user = await this.user(username);
    const removed = await this.store.deleteUserGrant(this.store.db, user.id, repo.id);
    if (removed) await this.record(p, 'grant.user.revoke', repo, { user: user.username });
    return { repo, user, removed };
  }

  async grantGroup(p: Principal, repoName: string, groupName: string, level: Level): Promise<{ repo: RepoRow; group: UsersGroupRow }> {
    const repo = await this.repos.get(p, repoName, 'repo:admin');
    const group = await this.group(groupName);
    await this.store.upsertGroupGrant(this.store.db, group.id, repo.id, level, now());
    await this.record(p, 'grant.group', repo, { group: group.name, perm: repoPermOf(level) });
    return { repo, group };
  }

  async revokeGroup(p: Principal, repoName: string, groupName: string): Promise<{ repo: RepoRow; group: UsersGroupRow; removed: boolean }> {
    const repo = await this.repos.get(p, repoName, 'repo:admin');
    const group = await this.group(groupName);
    const removed = await this.store.deleteGroupGrant(this.store.db, group.id, repo.id);
    if (removed) await this.record(p, 'grant.group.revoke', repo, { group: group.name });
    return { repo, group, removed };
  }

  /** Explicit grants on a repository, users then groups; the owner is listed as admin. Admin on it needed. */
  async members(p: Principal, repoRef: string): Promise<{ users: (UserRow & { level: number })[]; groups: (UsersGroupRow & { level: number })[] }> {
    const repo = await this.repos.get(p, repoRef, 'repo:admin');
    const [users, groups] = await Promise.all([this.store.listUserGrantsOnRepo(this.store.db, repo.id), this.store.listGroupGrantsOnRepo(this.store.db, repo.id)]);
    if (!users.some((u) => u.id === repo.owner_id)) {
      const owner = await this.store.findUserById(this.store.db, repo.owner_id);
      if (owner) users.unshift({ ...owner, level: Level.Admin });
    }
    return { users, groups };
  }
}
