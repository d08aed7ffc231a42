"""torchrun, with its stores listening on one address instead of every interface.

    python -m tui_trainer.runs.torchrun [torchrun's arguments]

torch's TCPStore server listens on every interface (`*:PORT`, no authentication) whatever host name it
is given. Here each store server that torchrun starts is handed a socket already bound to the address
of its own host name: the rendezvous endpoint's host for the rendezvous store, the node's
`--local-addr` for the store its workers share. A one-node run gives 127.0.0.1 for both, so nothing
listens beyond loopback; a multi-node run listens on the endpoint's interface. Everything else is
torchrun itself (`torch.distributed.run.main`).
"""

from __future__ import annotations

import socket
import sys
from datetime import timedelta


def bound_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on the first address `host` resolves to (port 0: a free one)."""
    family, _, _, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def install() -> None:
    """Make every TCPStore server torchrun creates in this process listen on its host's address only."""
    import torch.distributed as dist
    from torch.distributed.elastic.rendezvous import c10d_rendezvous_backend

    base = dist.TCPStore

    class BoundTCPStore(base):  # the rendezvous code constructs it by name; a subclass keeps isinstance true
        def __init__(self, host_name, port, world_size=None, is_master=False, timeout=timedelta(seconds=300),
                     wait_for_workers=True, multi_tenant=False, master_listen_fd=None, use_libuv=True):
            if is_master and master_listen_fd is None:
                try:
                    sock = bound_socket(host_name, port)
                    port, master_listen_fd = sock.getsockname()[1], sock.detach()
                except OSError:  # not an address of this machine: torch's own binding, and its own error
                    pass
            super().__init__(host_name, port, world_size, is_master, timeout, wait_for_workers, multi_tenant,
                             master_listen_fd, use_libuv)

    dist.TCPStore = BoundTCPStore
    c10d_rendezvous_backend.TCPStore = BoundTCPStore


def main() -> None:
    install()
    from torch.distributed.run import main as torchrun

    sys.argv[0] = "torchrun"
    torchrun()


if __name__ == "__main__":
    main()
