"""Palisade's Mercurial worker: Mercurial's own hgweb, serving its wire protocol over HTTP.

A long-lived process started by Palisade with the Python that runs `hg`. It listens on a Unix
socket in a folder only the server's user can open, so only Palisade reaches it. Palisade has
authenticated the caller and decided before it forwards a request; it names the repository
folder (X-Palisade-Repo), whether the caller may push (X-Palisade-Push) and who it is
(X-Palisade-User), and the worker configures hgweb to match: hgweb's own permission checks
(batched commands included) then enforce the same decision. It serves wire-protocol commands
only; Palisade never forwards anything else.

Also answers GET /__palisade/state (the repository's branch heads and bookmarks, as JSON) so
that Palisade can tell which moved in a push.
"""

import json
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer

from mercurial import hg, ui as uimod
from mercurial.hgweb import hgweb_mod
from mercurial.node import hex


def open_repo(path, push):
    u = uimod.ui.load()  # HGRCPATH is empty: no user or system configuration
    u.setconfig(b'ui', b'interactive', b'false', b'palisade')
    u.setconfig(b'ui', b'report_untrusted', b'false', b'palisade')
    u.setconfig(b'web', b'push_ssl', b'false', b'palisade')  # TLS is the front's business
    u.setconfig(b'web', b'allow-pull', b'true', b'palisade')
    u.setconfig(b'web', b'allow-push', b'*' if push else b'', b'palisade')
    if not push:
        u.setconfig(b'web', b'deny_push', b'*', b'palisade')
    u.setconfig(b'web', b'allow-archive', b'', b'palisade')
    return u, hg.repository(u, path)


def state(path):
    _, repo = open_repo(path, False)
    heads = {}
    for branch, nodes, tip, closed in repo.branchmap().iterbranches():
        heads[branch.decode('utf-8', 'replace')] = sorted(hex(n).decode() for n in nodes)
    marks = {k.decode('utf-8', 'replace'): hex(v).decode() for k, v in repo._bookmarks.items()}
    return {'heads': heads, 'bookmarks': marks}


def app(environ, start_response):
    path = environ.get('HTTP_X_PALISADE_REPO', '')
    if not path or not os.path.isdir(os.path.join(path, '.hg')):
        start_response('404 Not Found', [('Content-Type', 'text/plain')])
        return [b'no such repository\n']
    if environ.get('PATH_INFO') == '/__palisade/state':
        body = json.dumps(state(path.encode())).encode()
        start_response('200 OK', [('Content-Type', 'application/json'), ('Content-Length', str(len(body)))])
        return [body]
    push = environ.get('HTTP_X_PALISADE_PUSH') == '1'
    u, repo = open_repo(path.encode(), push)
    environ['REMOTE_USER'] = environ.get('HTTP_X_PALISADE_USER', 'palisade')
    environ['SCRIPT_NAME'] = ''
    environ['PATH_INFO'] = '/'
    return hgweb_mod.hgweb(repo, b'palisade', u)(environ, start_response)


class Handler(WSGIRequestHandler):
    def setup(self):
        super().setup()
        # a Unix socket has no client address; wsgiref's environ wants a (host, port) pair
        self.client_address = ('palisade', 0)

    def address_string(self):
        return 'palisade'

    def log_message(self, *args):  # Palisade logs every request itself
        pass


class UnixWSGIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer, WSGIServer):
    daemon_threads = True

    def server_bind(self):
        socketserver.UnixStreamServer.server_bind(self)
        self.server_name = 'palisade'
        self.server_port = 0
        self.setup_environ()


def main():
    sock = sys.argv[1]
    if os.path.exists(sock):
        os.unlink(sock)
    os.umask(0o077)
    server = UnixWSGIServer(sock, Handler)
    server.set_app(app)
    sys.stdout.write('ready\n')
    sys.stdout.flush()
    server.serve_forever()


if __name__ == '__main__':
    main()
