/** A ref that moved: `before`/`after` are commit ids, null for created/deleted. */
export interface RefChange {
  ref: string;
  before: string | null;
  after: string | null;
}

/** Where ref changes go (push triggers, audit); implementations must not throw or block. */
export interface RefEvents {
  refsChanged(repoId: string, changes: RefChange[]): void;
}

export const NO_EVENTS: RefEvents = { refsChanged: () => undefined };
