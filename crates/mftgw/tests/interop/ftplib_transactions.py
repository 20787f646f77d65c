"""Uploads and /out with Python's ftplib.FTP_TLS, as an integrator's script would.

Usage: ftplib_transactions.py HOST PORT CA CERT KEY USER PASSWORD STAMP
Uploads (binary, TYPE A, zero bytes, a name with spaces and Danish letters, and the
<txid>/in variant) into FTPSGW.Heartbeat, waits for the heartbeat's answers, reads /out
(SIZE, MDTM, MLSD, REST + RETR), reuses a name, deletes status files, and prints one JSON
object with what each step returned.
"""
import ftplib
import io
import json
import sys
import time

from gateway_session import logged_in

ftp, (stamp,) = logged_in(sys.argv[1:])
result = {}
HB = "FTPSGW.Heartbeat"

names = {
    "binary": f"ping{stamp}-bin.xml",
    "ascii": f"ping{stamp}-ascii.txt",
    "empty": f"ping{stamp}-empty.xml",
    "danish": f"ping {stamp} æøå ÆØÅ.xml",
    "txid": f"ping{stamp}-txid",
}
binary_body = bytes(range(256)) * 40
result["stor_binary"] = ftp.storbinary(f"STOR /{HB}/{names['binary']}", io.BytesIO(binary_body))
result["stor_ascii"] = ftp.storlines(f"STOR /{HB}/{names['ascii']}", io.BytesIO(b"line one\nline two\n"))
result["stor_empty"] = ftp.storbinary(f"STOR /{HB}/{names['empty']}", io.BytesIO(b""))
result["stor_danish"] = ftp.storbinary(f"STOR /{HB}/{names['danish']}", io.BytesIO(b"<hej/>"))
result["mkd_txid"] = ftp.mkd(f"/{HB}/{names['txid']}")
result["mkd_in"] = ftp.mkd(f"/{HB}/{names['txid']}/in")
result["list_with_txid"] = ftp.nlst(f"/{HB}")
result["stor_txid"] = ftp.storbinary(f"STOR /{HB}/{names['txid']}/in/payload.xml", io.BytesIO(b"<in/>"))
result["list_after"] = ftp.nlst(f"/{HB}")
try:
    result["size_uploaded"] = ftp.size(f"/{HB}/{names['binary']}")
except ftplib.error_perm as error:
    result["size_uploaded"] = str(error)

expected = [f"status_{HB}_{name}_3.xml" for name in names.values()]
deadline = time.time() + 30
while True:
    out = ftp.nlst("/out")
    if all(name in out for name in expected) or time.time() > deadline:
        break
    time.sleep(0.1)
result["out"] = out
list_lines = []
ftp.retrlines("LIST /out", list_lines.append)
result["list_out"] = list_lines
result["names"] = names

status_3 = f"/out/status_{HB}_{names['binary']}_3.xml"
result["size_status"] = ftp.size(status_3)
result["mdtm_status"] = ftp.sendcmd(f"MDTM {status_3}")
result["mlsd_out"] = [[name, facts.get("type"), facts.get("size")] for name, facts in ftp.mlsd("/out")]
chunks = []
ftp.retrbinary(f"RETR {status_3}", chunks.append)
result["status_3"] = b"".join(chunks).decode("utf-8")
response = f"/out/{HB}_in_{names['binary']}_response.txt"
whole, rest = [], []
ftp.retrbinary(f"RETR {response}", whole.append)
ftp.retrbinary(f"RETR {response}", rest.append, rest=10)
result["response"] = b"".join(whole).decode("utf-8")
result["response_from_10"] = b"".join(rest).decode("utf-8")
danish_chunks = []
ftp.retrbinary(f"RETR /out/status_{HB}_{names['danish']}_1.xml", danish_chunks.append)
result["danish_status_1"] = b"".join(danish_chunks).decode("utf-8")

result["reuse"] = ftp.storbinary(f"STOR /{HB}/{names['binary']}", io.BytesIO(b"again"))
status_0 = f"status_{HB}_{names['binary']}_0.xml"
deadline = time.time() + 10
while status_0 not in ftp.nlst("/out") and time.time() < deadline:
    time.sleep(0.1)
chunks = []
ftp.retrbinary(f"RETR /out/{status_0}", chunks.append)
result["status_0"] = b"".join(chunks).decode("utf-8")

deleted = []
for name in ftp.nlst("/out"):
    if names["binary"] in name:
        deleted.append(ftp.delete(f"/out/{name}"))
result["deleted"] = deleted
result["out_after_delete"] = ftp.nlst("/out")
try:
    ftp.delete(f"/out/{status_0}")
    result["delete_again"] = "deleted twice"
except ftplib.error_perm as error:
    result["delete_again"] = str(error)
result["quit"] = ftp.quit()
print(json.dumps(result))
