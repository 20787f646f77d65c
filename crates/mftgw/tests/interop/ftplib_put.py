"""Uploads one file with Python's ftplib.FTP_TLS and prints the final reply.

Usage: ftplib_put.py HOST PORT CA CERT KEY USER PASSWORD ascii|binary LOCAL REMOTE
`ascii` uses storlines (TYPE A, lines sent with CRLF), `binary` storbinary (TYPE I).
"""
import ftplib
import ssl
import sys

host, port, ca, cert, key, user, password, mode, local, remote = sys.argv[1:11]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
ftp = ftplib.FTP_TLS(context=context, timeout=30, encoding="utf-8")
ftp.connect(host, int(port))
ftp.login(user, password)
ftp.prot_p()
with open(local, "rb") as body:
    if mode == "ascii":
        print(ftp.storlines(f"STOR {remote}", body))
    else:
        print(ftp.storbinary(f"STOR {remote}", body))
ftp.quit()
