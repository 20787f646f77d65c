import java.io.*;
import java.nio.file.*;
import java.security.KeyStore;
import java.security.cert.*;
import java.util.*;
import javax.xml.parsers.*;
import javax.xml.transform.*;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.apache.ws.security.*;
import org.apache.ws.security.components.crypto.*;
import org.apache.ws.security.message.*;
import org.w3c.dom.Document;

/**
 * An independent WS-Security 1.0 sender for the tests: Apache WSS4J 1.6 (Debian's
 * libwss4j-java) secures a SOAP envelope the way seed 004 asks of EMCS clients. A Timestamp of
 * 60 s; Body, Timestamp and BinarySecurityToken signed with rsa-sha1 and exclusive c14n; the
 * Body content encrypted with tripledes-cbc under an rsa-1_5 key for the recipient, named by
 * its SubjectKeyIdentifier.
 *
 * Usage: WssClient seal IN.xml CLIENT.p12 P12_PASSWORD RECIPIENT.der OUT.xml BSP
 * BSP true is WSS4J's default (Basic Security Profile: an InclusiveNamespaces prefix list in
 * every exclusive c14n transform); false is how SKAT tells clients to configure it.
 */
public class WssClient {
    public static void main(String[] args) throws Exception {
        String in = args[1], p12 = args[2], password = args[3], recipient = args[4], out = args[5];
        boolean bsp = Boolean.parseBoolean(args[6]);
        WSSConfig.init();
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(bsp);
        Properties props = new Properties();
        props.setProperty("org.apache.ws.security.crypto.provider", "org.apache.ws.security.components.crypto.Merlin");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.type", "pkcs12");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.password", password);
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.file", p12);
        Crypto crypto = CryptoFactory.getInstance(props);
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream s = new FileInputStream(p12)) { ks.load(s, password.toCharArray()); }
        String alias = ks.aliases().nextElement();

        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        Document doc = f.newDocumentBuilder().parse(new File(in));
        String soapNs = doc.getDocumentElement().getNamespaceURI();

        WSSecHeader header = new WSSecHeader();
        header.setMustUnderstand(true);
        header.insertSecurityHeader(doc);
        WSSecTimestamp timestamp = new WSSecTimestamp(config);
        timestamp.setTimeToLive(60);
        timestamp.build(doc, header);

        WSSecSignature signature = new WSSecSignature(config);
        signature.setUserInfo(alias, password);
        signature.setKeyIdentifierType(WSConstants.BST_DIRECT_REFERENCE);
        signature.setSignatureAlgorithm(WSConstants.RSA_SHA1);
        signature.setDigestAlgo(WSConstants.SHA1);
        signature.setSigCanonicalization(WSConstants.C14N_EXCL_OMIT_COMMENTS);
        signature.prepare(doc, crypto, header);
        // In the header before the references are made, so that its digest covers it.
        signature.prependBSTElementToHeader(header);
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart("Body", soapNs, ""));
        parts.add(new WSEncryptionPart("Timestamp", WSConstants.WSU_NS, ""));
        WSEncryptionPart token = new WSEncryptionPart(signature.getBSTTokenId());
        token.setElement(signature.getBinarySecurityTokenElement());
        parts.add(token);
        List<javax.xml.crypto.dsig.Reference> refs = signature.addReferencesToSign(parts, header);
        signature.computeSignature(refs);

        X509Certificate cert;
        try (InputStream s = new FileInputStream(recipient)) {
            cert = (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(s);
        }
        WSSecEncrypt encrypt = new WSSecEncrypt(config);
        encrypt.setUseThisCert(cert);
        encrypt.setKeyIdentifierType(WSConstants.SKI_KEY_IDENTIFIER);
        encrypt.setSymmetricEncAlgorithm(WSConstants.TRIPLE_DES);
        encrypt.setKeyEnc(WSConstants.KEYTRANSPORT_RSA15);
        List<WSEncryptionPart> body = new ArrayList<>();
        body.add(new WSEncryptionPart("Body", soapNs, "Content"));
        encrypt.setParts(body);
        encrypt.build(doc, crypto, header);

        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.transform(new DOMSource(doc), new StreamResult(new File(out)));
    }
}
