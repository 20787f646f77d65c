"""The log-in every ftplib script of these tests starts with."""
import ftplib
import ssl


def logged_in(argv):
    """Logs in as an integrator's script would, from the arguments every script takes first
    (HOST PORT CA CERT KEY USER PASSWORD), with data protection on; returns the FTP_TLS
    session and the script's own arguments."""
    host, port, ca, cert, key, user, password = argv[:7]
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    ftp = ftplib.FTP_TLS(context=context, timeout=30, encoding="utf-8")
    ftp.connect(host, int(port))
    ftp.login(user, password)
    ftp.prot_p()
    return ftp, argv[7:]
