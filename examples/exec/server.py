"""The seed case's server in Python: read the request to end of file, answer.

    python3 server.py [PORT]
"""
import socket
import sys

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5555
with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as lsock:
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", port))
    lsock.listen(8)
    conn, _ = lsock.accept()
    with conn:
        total = 0
        while True:
            data = conn.recv(4096)
            if not data:
                break
            total += len(data)
        conn.sendall(b"got %d bytes\n" % total)
