"""An SMTP sink for load runs: aiosmtpd with a handler that writes each message into
DIR/new/ without the fsync Python's mailbox module does (which caps a Maildir at the disk's
sync rate). Run: PYTHONPATH=bench python3 -m aiosmtpd -n -l HOST:PORT -c smtp_sink.FastMaildir DIR
"""
import os
import uuid


class FastMaildir:
    def __init__(self, directory):
        self.new = os.path.join(directory, "new")
        self.tmp = os.path.join(directory, "tmp")
        os.makedirs(self.new, exist_ok=True)
        os.makedirs(self.tmp, exist_ok=True)

    @classmethod
    def from_cli(cls, parser, *args):
        if len(args) != 1:
            parser.error("FastMaildir takes the directory")
        return cls(args[0])

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = os.path.join(self.tmp, name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        # Appears whole or not at all.
        os.rename(tmp, os.path.join(self.new, name))
        return "250 OK"
