"""A real SMTP server for the mail tests (PyPI aiosmtpd): listens on a free loopback port,
prints the port on the first line of stdout, and writes each message it accepts to the
folder given as the only argument, as JSON {"mail_from", "rcpt_tos", "data"} (written to a
temporary name, then renamed, so a reader never sees half a message)."""
import asyncio
import json
import os
import sys
import uuid

from aiosmtpd.smtp import SMTP

OUT = sys.argv[1]


class Sink:
    async def handle_DATA(self, server, session, envelope):
        name = os.path.join(OUT, uuid.uuid4().hex)
        with open(name + ".tmp", "w", encoding="utf-8") as f:
            json.dump({"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                       "data": envelope.original_content.decode("utf-8", "replace")}, f)
        os.rename(name + ".tmp", name + ".json")
        return "250 Message accepted for delivery"


async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Sink()), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()


asyncio.run(main())
