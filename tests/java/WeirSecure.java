// The official Java client over SASL_SSL (SCRAM-SHA-512) against Weir: a user created with
// the admin API (KIP-554, the client salts the password), a producer and a consumer that
// authenticate as it and outlive connections.max.reauth.ms (KIP-368 re-authentication).
// Usage: java WeirSecure BOOTSTRAP TOPIC CA_PEM USER PASSWORD. Exits 1 on the first mismatch.

import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class WeirSecure {
    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    static Properties secure(String bootstrap, String ca, String user, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_SSL");
        p.put("ssl.truststore.type", "PEM");
        p.put("ssl.truststore.location", ca);
        p.put("sasl.mechanism", "SCRAM-SHA-512");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                + "username=\"" + user + "\" password=\"" + password + "\";");
        return p;
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0], topic = args[1], ca = args[2], user = args[3], password = args[4];
        try (Admin admin = Admin.create(secure(bootstrap, ca, user, password))) {
            admin.alterUserScramCredentials(List.of(new UserScramCredentialUpsertion("java-user",
                    new ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192), "java-pw")))
                    .all().get(30, TimeUnit.SECONDS);
            UserScramCredentialsDescription d = admin.describeUserScramCredentials(List.of("java-user"))
                    .description("java-user").get(30, TimeUnit.SECONDS);
            check(d.credentialInfos().size() == 1 && d.credentialInfos().get(0).iterations() == 8192,
                    "describeUserScramCredentials " + d);
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
        }
        Properties p = secure(bootstrap, ca, "java-user", "java-pw");
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        int n = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            // Three rounds spread over longer than the session lifetime the broker gives.
            for (int round = 0; round < 3; round++) {
                for (int i = 0; i < 100; i++, n++) {
                    producer.send(new ProducerRecord<>(topic, "k" + n, "v" + n)).get(30, TimeUnit.SECONDS);
                }
                Thread.sleep(2500);
            }
        }
        Properties c = secure(bootstrap, ca, "java-user", "java-pw");
        c.put(ConsumerConfig.GROUP_ID_CONFIG, "java-secure");
        c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        int got = 0;
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 60000;
            while (got < n && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    check(r.value().equals("v" + got), "record " + got + " was " + r.value());
                    got++;
                }
            }
            consumer.commitSync();
        }
        check(got == n, "consumed " + got + " of " + n);
        System.out.println("secure: " + n + " records over SASL_SSL as java-user");
        System.out.println("OK");
    }
}
