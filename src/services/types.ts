/** Row types the surfaces render; surfaces import them from here, never from store/. */
export type { RepoRow, UserRow, UsersGroupRow } from '../store/index.ts';

/**
 * `limit` and `offset` of a listing, as the surface's schema checked them (non-negative
 * integers, `limit` within the listing's maximum); absent: the listing's defaults.
 */
export interface PageQuery {
  limit?: number;
  offset?: number;
}
