"""Drives the gateway with Python's ftplib.FTP_TLS, as an integrator's script would.

Usage: ftplib_session.py HOST PORT CA CERT KEY USER PASSWORD SERVICE
Prints one JSON object with what each command returned.
"""
import ftplib
import json
import ssl
import sys

host, port, ca, cert, key, user, password, service = sys.argv[1:9]
context = ssl.create_default_context(cafile=ca)
context.load_cert_chain(cert, key)
ftp = ftplib.FTP_TLS(context=context, timeout=30)
result = {"welcome": ftp.connect(host, int(port))}
result["login"] = ftp.login(user, password)
result["prot"] = ftp.prot_p()
result["pwd"] = ftp.pwd()
lines = []
ftp.retrlines("LIST", lines.append)
result["list"] = lines
result["nlst"] = ftp.nlst()
result["mlsd"] = [[name, facts.get("type")] for name, facts in ftp.mlsd()]
result["cwd_service"] = ftp.cwd(service)
result["pwd_service"] = ftp.pwd()
result["cwd_out"] = ftp.cwd("/out")
result["list_out"] = ftp.nlst()
result["quit"] = ftp.quit()
print(json.dumps(result))
