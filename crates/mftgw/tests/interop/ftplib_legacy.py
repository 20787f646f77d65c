"""Drives the legacy Secure FTP listener with Python's ftplib.FTP_TLS.

Usage: ftplib_legacy.py HOST PORT CA CERT KEY USER PASSWORD MODE
MODE `session`: log in, show the login folder, `cd ..`, list `out`, read every file there.
MODE `no-login`: skip USER/PASS and ask for a listing.
Prints one JSON object with what each command returned.
"""
import ftplib
import json
import ssl
import sys

host, port, ca, cert, key, user, password, mode = sys.argv[1:9]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
ftp = ftplib.FTP_TLS(context=context, timeout=30)
result = {"welcome": ftp.connect(host, int(port))}
if mode == "no-login":
    ftp.auth()
    try:
        ftp.sendcmd("PWD")
        result["pwd"] = "answered"
    except ftplib.error_perm as refusal:
        result["pwd"] = str(refusal)
    print(json.dumps(result))
    sys.exit(0)
result["login"] = ftp.login(user, password)
result["prot"] = ftp.prot_p()
result["pwd"] = ftp.pwd()
result["home"] = sorted(ftp.nlst())
result["cdup"] = ftp.cwd("..")
result["pwd_up"] = ftp.pwd()
result["top"] = sorted(ftp.nlst())
result["out"] = {}
for name in ftp.nlst("out"):
    name = name.rsplit("/", 1)[-1]
    chunks = []
    ftp.retrbinary("RETR out/" + name, chunks.append)
    result["out"][name] = b"".join(chunks).decode("utf-8", "replace")
result["quit"] = ftp.quit()
print(json.dumps(result))
