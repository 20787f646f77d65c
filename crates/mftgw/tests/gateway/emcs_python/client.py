#!/usr/bin/env python3
"""An EMCS B2B web-service client in Python, independent of the gateway and of WSS4J: lxml
builds the SOAP 1.1 message and python-xmlsec (libxmlsec1) signs, encrypts, decrypts and
verifies it, with the WS-Security 1.0 profile that SKAT asks of EMCS callers.

The request: the caller's certificate as a BinarySecurityToken; a Timestamp of 60 s; one
rsa-sha1 signature with exclusive c14n (no InclusiveNamespaces prefix list) over the Body,
the Timestamp and the token, referenced by wsu:Id, its KeyInfo a SecurityTokenReference to
the token; then the Body content encrypted with tripledes-cbc under an rsa-1_5 EncryptedKey
for the gateway's WS-Security certificate, named by its SubjectKeyIdentifier, with a
ReferenceList to the EncryptedData.

The answer must come back the same way: it is decrypted with the caller's key, then its
signature must verify with the gateway's WS-Security certificate, be made with the token in
the answer holding that certificate, and cover the Body, the Timestamp and that token; the
Timestamp must be current. --answer-signer names another certificate to expect there, for a
gateway that signs with another certificate than it decrypts with.

Usage:
    client.py --url URL --ca TLS_CA.pem --cert CALLER.pem --key CALLER.key.pem \
        --gateway-cert GATEWAY_WSS.pem [--answer-signer SIGNER.pem] BODY.xml

BODY.xml (or - for standard input) holds the service's request element (its `_I` element).
Prints the answer's Body content, decrypted and verified, and exits 0; exits 3 when the
answer is refused (it does not decrypt or verify, or is no SOAP answer) and 4 on a SOAP
fault, with the reason on standard error.

Needs the packages of requirements.txt beside this file.
"""

import argparse
import base64
import datetime
import hashlib
import http.client
import ssl
import sys
import urllib.parse
import uuid

import xmlsec
from lxml import etree

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
TOKEN_PROFILE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3 = TOKEN_PROFILE + "#X509v3"
SUBJECT_KEY_IDENTIFIER = TOKEN_PROFILE + "#X509SubjectKeyIdentifier"
BASE64_BINARY = (
    "http://docs.oasis-open.org/wss/2004/01/"
    "oasis-200401-wss-soap-message-security-1.0#Base64Binary"
)
TIMESTAMP_LIFETIME = datetime.timedelta(seconds=60)
CLOCK_SKEW = datetime.timedelta(seconds=30)
SUBJECT_KEY_IDENTIFIER_OID = (0x06, bytes([0x55, 0x1D, 0x0E]))  # 2.5.29.14
# Not 1 (an uncaught exception) nor 2 (a usage error).
REFUSED_EXIT, FAULT_EXIT = 3, 4


class Refused(Exception):
    """The answer does not pass: the message says why."""


class Fault(Exception):
    """The gateway answered with a SOAP fault: its faultstring."""


def qname(namespace, name):
    return "{%s}%s" % (namespace, name)


def certificate_der(pem_file):
    """The first certificate of `pem_file` (the leaf of a chain), as DER."""
    with open(pem_file) as pem:
        text = pem.read()
    end = text.find(ssl.PEM_FOOTER)
    if end < 0:
        raise Refused("%s holds no PEM certificate" % pem_file)
    return ssl.PEM_cert_to_DER_cert(text[: end + len(ssl.PEM_FOOTER)])


def der_items(data):
    """The (tag, content) of each DER element in `data`, in order."""
    at = 0
    while at < len(data):
        tag, length = data[at], data[at + 1]
        at += 2
        if length & 0x80:
            size = length & 0x7F
            length = int.from_bytes(data[at : at + size], "big")
            at += size
        yield tag, data[at : at + length]
        at += length


def subject_key_identifier(der):
    """How WS-Security names a certificate by key: its SubjectKeyIdentifier extension or, for
    a certificate without one, the SHA-1 of its public key (the X.509 token profile's rule).
    The ASN.1 is walked here because neither lxml nor xmlsec exposes it."""
    [(_, certificate)] = list(der_items(der))
    fields = list(der_items(next(der_items(certificate))[1]))
    # version [0], serial, signature, issuer, validity, subject, subjectPublicKeyInfo, ...
    offset = 1 if fields[0][0] == 0xA0 else 0
    _, public_key_info = fields[offset + 5]
    _, public_key_bits = list(der_items(public_key_info))[1]
    for tag, extensions in fields[offset + 6 :]:
        if tag != 0xA3:
            continue
        for _, extension in der_items(next(der_items(extensions))[1]):
            parts = list(der_items(extension))
            if parts[0] == SUBJECT_KEY_IDENTIFIER_OID:
                [(_, key_identifier)] = list(der_items(parts[-1][1]))
                return key_identifier
    # The BIT STRING's first byte counts its unused bits; the key is what follows.
    return hashlib.sha1(public_key_bits[1:]).digest()


def element(parent, namespace, name, text=None, **attributes):
    child = etree.SubElement(parent, qname(namespace, name), attributes)
    child.text = text
    return child


def made_child(parent, namespace, name):
    """The child `name` of a node that xmlsec made: lxml's find misses those, as their names
    are not in the document's dictionary."""
    return next(child for child in parent if child.tag == qname(namespace, name))


def xml_time(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (moment.microsecond // 1000)


def secure(body_element, caller_cert, caller_key, gateway_cert):
    """The signed and encrypted SOAP envelope carrying `body_element`."""
    suffix = uuid.uuid4()
    token_id, timestamp_id, body_id = "X509-%s" % suffix, "TS-%s" % suffix, "id-%s" % suffix
    key_id, data_id = "EK-%s" % suffix, "ED-%s" % suffix

    envelope = etree.Element(qname(SOAP, "Envelope"), nsmap={"soap": SOAP})
    header = element(envelope, SOAP, "Header")
    security = etree.SubElement(header, qname(WSSE, "Security"), nsmap={"wsse": WSSE, "wsu": WSU})
    security.set(qname(SOAP, "mustUnderstand"), "1")
    body = etree.SubElement(envelope, qname(SOAP, "Body"), nsmap={"wsu": WSU})
    body.set(qname(WSU, "Id"), body_id)
    body.append(body_element)

    token = element(
        security,
        WSSE,
        "BinarySecurityToken",
        base64.b64encode(certificate_der(caller_cert)).decode(),
        EncodingType=BASE64_BINARY,
        ValueType=X509V3,
    )
    token.set(qname(WSU, "Id"), token_id)
    now = datetime.datetime.now(datetime.timezone.utc)
    timestamp = element(security, WSU, "Timestamp")
    timestamp.set(qname(WSU, "Id"), timestamp_id)
    element(timestamp, WSU, "Created", xml_time(now))
    element(timestamp, WSU, "Expires", xml_time(now + TIMESTAMP_LIFETIME))

    signature = xmlsec.template.create(
        envelope, xmlsec.Transform.EXCL_C14N, xmlsec.Transform.RSA_SHA1, ns="ds"
    )
    # In its place before signing: SignedInfo is canonicalized where it stands.
    security.append(signature)
    for signed in (body_id, timestamp_id, token_id):
        reference = xmlsec.template.add_reference(
            signature, xmlsec.Transform.SHA1, uri="#" + signed
        )
        xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    token_reference = element(
        xmlsec.template.ensure_key_info(signature), WSSE, "SecurityTokenReference"
    )
    element(token_reference, WSSE, "Reference", URI="#" + token_id, ValueType=X509V3)
    xmlsec.tree.add_ids(envelope, ["Id"])
    signing = xmlsec.SignatureContext()
    signing.key = xmlsec.Key.from_file(caller_key, xmlsec.KeyFormat.PEM)
    signing.sign(signature)

    # xmlsec writes the EncryptedKey inside the EncryptedData's KeyInfo; WS-Security wants
    # it in the Security header, naming its recipient and the data it unlocks.
    encrypted_data = xmlsec.template.encrypted_data_create(
        envelope, xmlsec.Transform.DES3, type=xmlsec.EncryptionType.CONTENT, ns="xenc", id=data_id
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_data)
    key_info = xmlsec.template.encrypted_data_ensure_key_info(encrypted_data, ns="ds")
    encrypted_key = xmlsec.template.add_encrypted_key(
        key_info, xmlsec.Transform.RSA_PKCS1, id=key_id
    )
    xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_file(gateway_cert, xmlsec.KeyFormat.CERT_PEM))
    encrypting = xmlsec.EncryptionContext(manager)
    encrypting.key = xmlsec.Key.generate(xmlsec.KeyData.DES, 192, xmlsec.KeyDataType.SESSION)
    encrypted_data = encrypting.encrypt_xml(encrypted_data, body)

    key_info = made_child(encrypted_data, DS, "KeyInfo")
    encrypted_key = made_child(key_info, XENC, "EncryptedKey")
    encrypted_data.remove(key_info)
    security.insert(0, encrypted_key)
    recipient = etree.Element(qname(DS, "KeyInfo"), nsmap={"ds": DS})
    element(
        element(recipient, WSSE, "SecurityTokenReference"),
        WSSE,
        "KeyIdentifier",
        base64.b64encode(subject_key_identifier(certificate_der(gateway_cert))).decode(),
        EncodingType=BASE64_BINARY,
        ValueType=SUBJECT_KEY_IDENTIFIER,
    )
    made_child(encrypted_key, XENC, "EncryptionMethod").addnext(recipient)
    element(element(encrypted_key, XENC, "ReferenceList"), XENC, "DataReference", URI="#" + data_id)
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def post(url, ca, message):
    """POSTs `message` to `url` over HTTPS trusting `ca`: the HTTP status and the answer."""
    target = urllib.parse.urlsplit(url)
    context = ssl.create_default_context(cafile=ca)
    connection = http.client.HTTPSConnection(
        target.hostname, target.port, context=context, timeout=120
    )
    path = target.path + ("?" + target.query if target.query else "")
    connection.request(
        "POST",
        path,
        body=message,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
    )
    response = connection.getresponse()
    return response.status, response.read()


def one(parent, namespace, name, what):
    found = parent.findall(qname(namespace, name))
    if len(found) != 1:
        raise Refused("the answer must have exactly one %s, it has %d" % (what, len(found)))
    return found[0]


def parse_time(text):
    try:
        return datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise Refused("the answer's Timestamp holds %r, which is no xsd:dateTime" % text)


def open_answer(answer, caller_key, signer_cert):
    """The decrypted Body of `answer` once its signature and Timestamp pass."""
    try:
        envelope = etree.fromstring(
            answer, etree.XMLParser(resolve_entities=False, no_network=True)
        )
    except etree.XMLSyntaxError as error:
        raise Refused("the answer is not XML: %s" % error)
    if envelope.tag != qname(SOAP, "Envelope"):
        raise Refused("the answer is not a SOAP 1.1 Envelope")
    header = one(envelope, SOAP, "Header", "soap:Header")
    body = one(envelope, SOAP, "Body", "soap:Body")
    security = one(header, WSSE, "Security", "wsse:Security header")

    encrypted_key = one(security, XENC, "EncryptedKey", "xenc:EncryptedKey")
    references = encrypted_key.findall("xenc:ReferenceList/xenc:DataReference", {"xenc": XENC})
    encrypted_data = body.find(qname(XENC, "EncryptedData"))
    if (
        encrypted_data is None
        or len(references) != 1
        or references[0].get("URI") != "#" + (encrypted_data.get("Id") or "")
    ):
        raise Refused("the answer's EncryptedKey does not unlock its Body")
    try:
        unwrapping = xmlsec.EncryptionContext()
        unwrapping.key = xmlsec.Key.from_file(caller_key, xmlsec.KeyFormat.PEM)
        session_key = unwrapping.decrypt(encrypted_key)
        decrypting = xmlsec.EncryptionContext()
        decrypting.key = xmlsec.Key.from_binary_data(xmlsec.KeyData.DES, session_key)
        decrypting.decrypt(encrypted_data)
    except xmlsec.Error as error:
        raise Refused("the answer's Body cannot be decrypted with the caller's key: %s" % error)

    token = one(security, WSSE, "BinarySecurityToken", "wsse:BinarySecurityToken")
    timestamp = one(security, WSU, "Timestamp", "wsu:Timestamp")
    signature = one(security, DS, "Signature", "ds:Signature")
    ids = [node.get(qname(WSU, "Id")) for node in envelope.iter() if node.get(qname(WSU, "Id"))]
    if len(ids) != len(set(ids)):
        raise Refused("the answer uses a wsu:Id twice")
    xmlsec.tree.add_ids(envelope, ["Id"])
    verifying = xmlsec.SignatureContext()
    verifying.key = xmlsec.Key.from_file(signer_cert, xmlsec.KeyFormat.CERT_PEM)
    try:
        verifying.verify(signature)
    except xmlsec.Error as error:
        raise Refused(
            "the answer's signature does not verify with %s, the certificate it must be "
            "signed with: %s" % (signer_cert, error)
        )

    covered = {
        reference.get("URI")
        for reference in signature.findall("ds:SignedInfo/ds:Reference", {"ds": DS})
    }
    for part, what in ((body, "Body"), (timestamp, "Timestamp"), (token, "BinarySecurityToken")):
        if "#" + (part.get(qname(WSU, "Id")) or "") not in covered:
            raise Refused("the answer's signature does not cover its %s" % what)
    signed_with = signature.find(
        "ds:KeyInfo/wsse:SecurityTokenReference/wsse:Reference", {"ds": DS, "wsse": WSSE}
    )
    if signed_with is None or signed_with.get("URI") != "#" + token.get(qname(WSU, "Id")):
        raise Refused("the answer's signature does not name its BinarySecurityToken")
    if base64.b64decode("".join((token.text or "").split())) != certificate_der(signer_cert):
        raise Refused("the answer's BinarySecurityToken does not hold %s" % signer_cert)

    now = datetime.datetime.now(datetime.timezone.utc)
    created = parse_time(timestamp.findtext(qname(WSU, "Created")) or "")
    expires = parse_time(timestamp.findtext(qname(WSU, "Expires")) or "")
    if created > now + CLOCK_SKEW or expires <= now - CLOCK_SKEW:
        raise Refused("the answer's Timestamp (%s to %s) is not current" % (created, expires))

    return "".join(etree.tostring(child, encoding="unicode") for child in body)


def fault_string(answer):
    try:
        envelope = etree.fromstring(answer)
    except etree.XMLSyntaxError:
        return None
    return envelope.findtext("soap:Body/soap:Fault/faultstring", namespaces={"soap": SOAP})


def call(args):
    if args.body == "-":
        body_xml = sys.stdin.buffer.read()
    else:
        with open(args.body, "rb") as file:
            body_xml = file.read()
    request = secure(etree.fromstring(body_xml), args.cert, args.key, args.gateway_cert)
    status, answer = post(args.url, args.ca, request)
    fault = fault_string(answer) if status == 500 else None
    if fault is not None:
        raise Fault(fault)
    if status != 200:
        raise Refused("HTTP %d: %s" % (status, answer[:2000].decode(errors="replace")))
    return open_answer(answer, args.key, args.answer_signer or args.gateway_cert)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the service's endpoint")
    parser.add_argument(
        "--ca", required=True, help="the CA of the endpoint's TLS certificate (PEM)"
    )
    parser.add_argument("--cert", required=True, help="the caller's certificate (PEM)")
    parser.add_argument("--key", required=True, help="the caller's private key (unencrypted PEM)")
    parser.add_argument(
        "--gateway-cert", required=True, help="the gateway's WS-Security certificate (PEM)"
    )
    parser.add_argument(
        "--answer-signer",
        help="the certificate the answer must be signed with (PEM); the gateway's by default",
    )
    parser.add_argument("body", help="the request element, a file or - for standard input")
    args = parser.parse_args()
    try:
        print(call(args))
    except Fault as fault:
        print("SOAP fault: %s" % fault, file=sys.stderr)
        sys.exit(FAULT_EXIT)
    except Refused as refused:
        print("refused: %s" % refused, file=sys.stderr)
        sys.exit(REFUSED_EXIT)


if __name__ == "__main__":
    main()
