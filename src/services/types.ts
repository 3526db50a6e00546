/** Row types the surfaces render; surfaces import them from here, never from store/. */
export type { RepoRow, UserRow, UsersGroupRow } from '../store/index.ts';
