"""The SMTP server of the mail tests and the mail benchmark: aiosmtpd with a handler that
writes each accepted message into DIR/new/ (Maildir layout, without the fsync Python's mailbox
module does, which would cap a run at the disk's sync rate), and refuses for good (550) any
recipient whose address starts with "reject".

Run: PYTHONPATH=tests/smtp python3 -m aiosmtpd -n -l HOST:PORT -c smtp_sink.FastMaildir DIR
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

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower().startswith("reject"):
            return "550 5.1.1 No such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        name = uuid.uuid4().hex
        tmp = os.path.join(self.tmp, name)
        with open(tmp, "wb") as f:
            f.write(envelope.original_content or envelope.content)
        # Appears whole or not at all.
        os.rename(tmp, os.path.join(self.new, name))
        return "250 OK"
