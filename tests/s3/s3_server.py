"""An S3-compatible server (moto) on 127.0.0.1 and a free port, for the export storage
tests: prints the port on one line, then serves until killed. Buckets and objects live in
this process's memory only."""
import logging
import signal
import sys
import threading

from moto.server import ThreadedMotoServer

logging.getLogger("werkzeug").setLevel(logging.ERROR)
server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
threading.Event().wait()
