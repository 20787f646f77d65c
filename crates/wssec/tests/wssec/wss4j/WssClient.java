import java.io.*;
import java.nio.file.*;
import java.security.KeyStore;
import java.security.cert.*;
import java.util.*;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
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
 * Usage: WssClient seal IN.xml CLIENT.p12 P12_PASSWORD RECIPIENT.der OUT.xml BSP [...]
 * BSP true is WSS4J's default (Basic Security Profile: an InclusiveNamespaces prefix list in
 * every exclusive c14n transform); false is how SKAT tells clients to configure it.
 *
 * And the receiving side, as a WSS4J client processes an answer:
 * WssClient open IN.xml CLIENT.p12 P12_PASSWORD TRUST.p12 OUT.xml [...]
 * decrypts with the client's key, verifies the signature (its certificate must chain to a
 * certificate in TRUST.p12, password "changeit") and the Timestamp, writes the decrypted
 * envelope to OUT.xml and prints one line per result: "signer <subject DN>", "signed
 * <local name>" for each element the signature covers, "decrypted", "timestamp".
 */
public class WssClient {
    public static void main(String[] args) throws Exception {
        // Several messages in one run (the arguments after the mode, repeated) save a JVM
        // start each; each report of "open" begins with "== OUT.xml".
        WSSConfig.init();
        if (args[0].equals("open")) {
            for (int i = 1; i + 5 <= args.length; i += 5) {
                System.out.println("== " + args[i + 4]);
                open(args[i], args[i + 1], args[i + 2], args[i + 3], args[i + 4]);
            }
        } else {
            for (int i = 1; i + 6 <= args.length; i += 6) {
                seal(Arrays.copyOfRange(args, i - 1, i + 6));
            }
        }
    }

    static Properties keystore(String p12, String password) {
        Properties props = new Properties();
        props.setProperty("org.apache.ws.security.crypto.provider", "org.apache.ws.security.components.crypto.Merlin");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.type", "pkcs12");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.password", password);
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.file", p12);
        return props;
    }

    static Document parse(String path) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        return f.newDocumentBuilder().parse(new File(path));
    }

    static void write(Document doc, String path) throws Exception {
        Transformer t = TransformerFactory.newInstance().newTransformer();
        t.transform(new DOMSource(doc), new StreamResult(new File(path)));
    }

    static void open(String in, String p12, String password, String trust, String out) throws Exception {
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(false);
        Properties props = keystore(p12, password);
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.type", "pkcs12");
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.password", "changeit");
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.file", trust);
        Crypto crypto = CryptoFactory.getInstance(props);
        Document doc = parse(in);
        WSSecurityEngine engine = new WSSecurityEngine();
        engine.setWssConfig(config);
        CallbackHandler handler = (Callback[] callbacks) -> {
            for (Callback callback : callbacks) {
                ((WSPasswordCallback) callback).setPassword(password);
            }
        };
        List<WSSecurityEngineResult> results = engine.processSecurityHeader(doc, null, handler, crypto, crypto);
        for (WSSecurityEngineResult result : results) {
            int action = (Integer) result.get(WSSecurityEngineResult.TAG_ACTION);
            if (action == WSConstants.SIGN) {
                X509Certificate signer = (X509Certificate) result.get(WSSecurityEngineResult.TAG_X509_CERTIFICATE);
                System.out.println("signer " + signer.getSubjectX500Principal().getName());
                @SuppressWarnings("unchecked")
                List<WSDataRef> refs = (List<WSDataRef>) result.get(WSSecurityEngineResult.TAG_DATA_REF_URIS);
                for (WSDataRef ref : refs) {
                    System.out.println("signed " + ref.getName().getLocalPart());
                }
            } else if (action == WSConstants.ENCR) {
                System.out.println("decrypted");
            } else if (action == WSConstants.TS) {
                System.out.println("timestamp");
            }
        }
        write(doc, out);
    }

    static void seal(String[] args) throws Exception {
        String in = args[1], p12 = args[2], password = args[3], recipient = args[4], out = args[5];
        boolean bsp = Boolean.parseBoolean(args[6]);
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(bsp);
        Crypto crypto = CryptoFactory.getInstance(keystore(p12, password));
        KeyStore ks = KeyStore.getInstance("PKCS12");
        try (InputStream s = new FileInputStream(p12)) { ks.load(s, password.toCharArray()); }
        String alias = ks.aliases().nextElement();

        Document doc = parse(in);
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

        write(doc, out);
    }
}
