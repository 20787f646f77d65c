"""Uploads one file with Python's ftplib.FTP_TLS and prints the final reply.

Usage: ftplib_put.py HOST PORT CA CERT KEY USER PASSWORD ascii|binary LOCAL REMOTE
`ascii` uses storlines (TYPE A, lines sent with CRLF), `binary` storbinary (TYPE I).
"""
import sys

from gateway_session import logged_in

ftp, (mode, local, remote) = logged_in(sys.argv[1:])
with open(local, "rb") as body:
    if mode == "ascii":
        print(ftp.storlines(f"STOR {remote}", body))
    else:
        print(ftp.storbinary(f"STOR {remote}", body))
ftp.quit()
