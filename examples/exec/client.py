"""The seed case's client in Python: send a request, half-close, read the answer.

    python3 client.py [PORT] [--no-shut-wr]
"""
import socket
import sys

args = [a for a in sys.argv[1:] if not a.startswith("--")]
port = int(args[0]) if args else 5555
with socket.create_connection(("127.0.0.1", port)) as sock:
    sock.sendall(b"GET /answer\n")
    if "--no-shut-wr" not in sys.argv:
        sock.shutdown(socket.SHUT_WR)
    answer = b""
    while True:
        data = sock.recv(4096)
        if not data:
            break
        answer += data
    sys.stdout.write(answer.decode())
