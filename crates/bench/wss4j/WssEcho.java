import com.sun.net.httpserver.*;
import java.io.*;
import java.net.InetSocketAddress;
import java.nio.charset.StandardCharsets;
import java.security.KeyStore;
import java.security.cert.X509Certificate;
import java.util.*;
import java.util.concurrent.Executors;
import javax.net.ssl.*;
import javax.security.auth.callback.Callback;
import javax.security.auth.callback.CallbackHandler;
import javax.xml.parsers.*;
import javax.xml.transform.*;
import javax.xml.transform.dom.DOMSource;
import javax.xml.transform.stream.StreamResult;
import org.apache.ws.security.*;
import org.apache.ws.security.components.crypto.*;
import org.apache.ws.security.message.*;
import org.w3c.dom.*;

/**
 * The peer of the EMCS throughput benchmark: an HTTPS SOAP endpoint on Apache WSS4J 1.6 that
 * does a B2B call's WS-Security work and nothing else. It decrypts and verifies a request as
 * seed 004 secures it (the signer must chain to TRUST.p12, password "changeit"), and answers
 * its `_I` element with the `_O` element holding HovedOplysningerSvar with the same
 * TransaktionIdentifikator, signed with SERVER.p12's key and encrypted for the signer.
 *
 * Usage: WssEcho PORT TLS.p12 TLS_PASSWORD SERVER.p12 SERVER_PASSWORD TRUST.p12 THREADS
 */
public class WssEcho {
    static final String KONTEKST = "http://rep.oio.dk/skat.dk/basis/kontekst/xml/schemas/2006/09/01/";

    public static void main(String[] args) throws Exception {
        int port = Integer.parseInt(args[0]);
        String tls = args[1], tlsPassword = args[2], server = args[3], password = args[4], trust = args[5];
        int threads = Integer.parseInt(args[6]);
        WSSConfig.init();
        Properties props = new Properties();
        props.setProperty("org.apache.ws.security.crypto.provider", "org.apache.ws.security.components.crypto.Merlin");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.type", "pkcs12");
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.password", password);
        props.setProperty("org.apache.ws.security.crypto.merlin.keystore.file", server);
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.type", "pkcs12");
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.password", "changeit");
        props.setProperty("org.apache.ws.security.crypto.merlin.truststore.file", trust);
        Crypto crypto = CryptoFactory.getInstance(props);
        KeyStore keys = KeyStore.getInstance("PKCS12");
        try (InputStream s = new FileInputStream(server)) { keys.load(s, password.toCharArray()); }
        String alias = keys.aliases().nextElement();

        KeyStore tlsKeys = KeyStore.getInstance("PKCS12");
        try (InputStream s = new FileInputStream(tls)) { tlsKeys.load(s, tlsPassword.toCharArray()); }
        KeyManagerFactory kmf = KeyManagerFactory.getInstance(KeyManagerFactory.getDefaultAlgorithm());
        kmf.init(tlsKeys, tlsPassword.toCharArray());
        SSLContext context = SSLContext.getInstance("TLS");
        context.init(kmf.getKeyManagers(), null, null);

        HttpsServer https = HttpsServer.create(new InetSocketAddress("127.0.0.1", port), 128);
        https.setHttpsConfigurator(new HttpsConfigurator(context));
        https.setExecutor(Executors.newFixedThreadPool(threads));
        https.createContext("/", exchange -> {
            byte[] answer;
            int status = 200;
            try {
                answer = echo(exchange.getRequestBody(), crypto, alias, password);
            } catch (Exception e) {
                status = 500;
                answer = String.valueOf(e).getBytes(StandardCharsets.UTF_8);
            }
            exchange.getResponseHeaders().set("Content-Type", "text/xml; charset=utf-8");
            exchange.sendResponseHeaders(status, answer.length);
            try (OutputStream out = exchange.getResponseBody()) { out.write(answer); }
        });
        https.start();
        System.out.println("listening on " + port);
    }

    static byte[] echo(InputStream body, Crypto crypto, String alias, String password) throws Exception {
        DocumentBuilderFactory f = DocumentBuilderFactory.newInstance();
        f.setNamespaceAware(true);
        Document request = f.newDocumentBuilder().parse(body);
        WSSConfig config = WSSConfig.getNewInstance();
        config.setWsiBSPCompliant(false);
        WSSecurityEngine engine = new WSSecurityEngine();
        engine.setWssConfig(config);
        CallbackHandler handler = (Callback[] callbacks) -> {
            for (Callback callback : callbacks) ((WSPasswordCallback) callback).setPassword(password);
        };
        List<WSSecurityEngineResult> results = engine.processSecurityHeader(request, null, handler, crypto, crypto);
        X509Certificate signer = null;
        for (WSSecurityEngineResult result : results) {
            if ((Integer) result.get(WSSecurityEngineResult.TAG_ACTION) == WSConstants.SIGN) {
                signer = (X509Certificate) result.get(WSSecurityEngineResult.TAG_X509_CERTIFICATE);
            }
        }
        if (signer == null) throw new IllegalArgumentException("not signed");
        String soapNs = request.getDocumentElement().getNamespaceURI();
        Element call = firstElement(request.getElementsByTagNameNS(soapNs, "Body").item(0));
        String name = call.getLocalName().replaceAll("_I$", "_O");
        String id = request.getElementsByTagNameNS(KONTEKST, "TransaktionIdentifikator").item(0).getTextContent();

        Document doc = f.newDocumentBuilder().newDocument();
        Element envelope = doc.createElementNS(soapNs, "soap:Envelope");
        doc.appendChild(envelope);
        envelope.appendChild(doc.createElementNS(soapNs, "soap:Header"));
        Element soapBody = doc.createElementNS(soapNs, "soap:Body");
        envelope.appendChild(soapBody);
        Element answer = doc.createElementNS(call.getNamespaceURI(), "s:" + name);
        // Declared outright: the encrypted content is serialized without namespace fix-up.
        answer.setAttributeNS("http://www.w3.org/2000/xmlns/", "xmlns:s", call.getNamespaceURI());
        answer.setAttributeNS("http://www.w3.org/2000/xmlns/", "xmlns:k", KONTEKST);
        soapBody.appendChild(answer);
        Element svar = doc.createElementNS(KONTEKST, "k:HovedOplysningerSvar");
        answer.appendChild(svar);
        Element txid = doc.createElementNS(KONTEKST, "k:TransaktionIdentifikator");
        txid.setTextContent(id);
        svar.appendChild(txid);

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
        signature.prependBSTElementToHeader(header);
        List<WSEncryptionPart> parts = new ArrayList<>();
        parts.add(new WSEncryptionPart("Body", soapNs, ""));
        parts.add(new WSEncryptionPart("Timestamp", WSConstants.WSU_NS, ""));
        WSEncryptionPart token = new WSEncryptionPart(signature.getBSTTokenId());
        token.setElement(signature.getBinarySecurityTokenElement());
        parts.add(token);
        signature.computeSignature(signature.addReferencesToSign(parts, header));
        WSSecEncrypt encrypt = new WSSecEncrypt(config);
        encrypt.setUseThisCert(signer);
        encrypt.setKeyIdentifierType(WSConstants.SKI_KEY_IDENTIFIER);
        encrypt.setSymmetricEncAlgorithm(WSConstants.TRIPLE_DES);
        encrypt.setKeyEnc(WSConstants.KEYTRANSPORT_RSA15);
        List<WSEncryptionPart> content = new ArrayList<>();
        content.add(new WSEncryptionPart("Body", soapNs, "Content"));
        encrypt.setParts(content);
        encrypt.build(doc, crypto, header);

        ByteArrayOutputStream out = new ByteArrayOutputStream();
        TransformerFactory.newInstance().newTransformer().transform(new DOMSource(doc), new StreamResult(out));
        return out.toByteArray();
    }

    static Element firstElement(Node parent) {
        for (Node child = parent.getFirstChild(); child != null; child = child.getNextSibling()) {
            if (child instanceof Element) return (Element) child;
        }
        throw new IllegalArgumentException("the Body is empty");
    }
}
