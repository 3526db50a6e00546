import type { FastifyReply } from 'fastify';
import type { VNode } from 'preact';
import { renderToString } from 'preact-render-to-string';

/** Sends a page: the template rendered to a string (every value escaped by preact). */
export function html(reply: FastifyReply, page: VNode<any>): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(`<!doctype html>${renderToString(page)}`);
}

/** Sends the browser elsewhere after a form (POST/redirect/GET), to a path on this site only. */
export function redirect(reply: FastifyReply, to: string): FastifyReply {
  return reply.status(303).header('location', safeLocal(to)).send();
}

/** A local path: `/…` but not `//…` or `/\…` (which browsers read as another host); else `/`. */
export function safeLocal(to: string): string {
  return /^\/(?![/\\])[^\s]*$/.test(to) ? to : '/';
}
