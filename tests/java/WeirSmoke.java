// The official Java client (kafka-clients 4.3) against Weir: admin, an idempotent producer
// with compression and headers, a classic consumer group that commits, a KIP-848 group, and
// transactions with sendOffsetsToTransaction seen through the admin client's
// listTransactions, describeTransactions and describeProducers.
// Usage: java WeirSmoke BOOTSTRAP TOPIC. Exits 1 with a message on the first mismatch.

import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.*;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class WeirSmoke {
    static final int N = 3000;
    static final int PARTITIONS = 3;

    static void check(boolean ok, String what) {
        if (!ok) {
            System.err.println("FAILED: " + what);
            System.exit(1);
        }
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        String topic = args[1];

        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, PARTITIONS, (short) 1)
                    .configs(Map.of("retention.ms", "3600000")))).all().get(30, TimeUnit.SECONDS);
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            check(d.partitions().size() == PARTITIONS, "describeTopics partitions " + d.partitions().size());
            String clusterId = admin.describeCluster().clusterId().get();
            check(clusterId != null && !clusterId.isEmpty(), "cluster id");
        }

        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, "lz4");
        // Defaults kept on purpose: acks=all and enable.idempotence=true (InitProducerId).
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
            List<java.util.concurrent.Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < N; i++) {
                ProducerRecord<String, String> r = new ProducerRecord<>(topic, i % PARTITIONS, "k" + i, "v" + i);
                r.headers().add("n", Integer.toString(i).getBytes(StandardCharsets.UTF_8));
                acks.add(producer.send(r));
            }
            producer.flush();
            for (int i = 0; i < N; i++) {
                RecordMetadata m = acks.get(i).get();
                check(m.offset() == i / PARTITIONS, "offset of record " + i + " is " + m.offset());
            }
        }

        for (String protocol : List.of("classic", "consumer")) {
            Properties c = new Properties();
            c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            c.put(ConsumerConfig.GROUP_ID_CONFIG, "java-" + protocol + "-" + topic);
            c.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, protocol);
            c.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            c.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
            c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
            Set<String> seen = new HashSet<>();
            long t0 = System.nanoTime();
            long first = -1;
            try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
                consumer.subscribe(List.of(topic));
                long deadline = System.currentTimeMillis() + 60_000;
                while (seen.size() < N && System.currentTimeMillis() < deadline) {
                    for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) {
                        if (first < 0) first = (System.nanoTime() - t0) / 1_000_000;
                        int i = Integer.parseInt(r.value().substring(1));
                        check(r.key().equals("k" + i), "key of " + r.value());
                        check(r.partition() == i % PARTITIONS && r.offset() == i / PARTITIONS,
                              "placement of " + r.value());
                        Header h = r.headers().lastHeader("n");
                        check(h != null && new String(h.value(), StandardCharsets.UTF_8).equals(Integer.toString(i)),
                              "header of " + r.value());
                        seen.add(r.value());
                    }
                }
                check(seen.size() == N, protocol + ": consumed " + seen.size() + " of " + N);
                consumer.commitSync();
                Map<TopicPartition, OffsetAndMetadata> committed = consumer.committed(
                        Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1), new TopicPartition(topic, 2)));
                for (OffsetAndMetadata o : committed.values()) {
                    check(o != null && o.offset() == N / PARTITIONS, protocol + ": committed " + o);
                }
            }
            System.out.println(protocol + " group: first record after " + first + " ms, all " + N + " records ok");
        }
        transactions(bootstrap, topic);
        System.out.println("OK");
    }

    static void transactions(String bootstrap, String source) throws Exception {
        String topic = source + "-txn";
        String group = "java-txn-" + source;
        String txnId = "java-tid-" + source;
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(a)) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(30, TimeUnit.SECONDS);
            Properties p = new Properties();
            p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
            p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, txnId);
            p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
            TopicPartition in0 = new TopicPartition(source, 0);
            try (KafkaProducer<String, String> producer = new KafkaProducer<>(p)) {
                producer.initTransactions();
                producer.beginTransaction();
                for (int i = 0; i < 10; i++) producer.send(new ProducerRecord<>(topic, "c" + i));
                producer.sendOffsetsToTransaction(Map.of(in0, new OffsetAndMetadata(10)),
                        new ConsumerGroupMetadata(group));
                producer.flush();
                // An operator sees the open transaction and what holds the partition back.
                TransactionDescription open = admin.describeTransactions(List.of(txnId))
                        .description(txnId).get(30, TimeUnit.SECONDS);
                check(open.state() == TransactionState.ONGOING, "describeTransactions state " + open.state());
                check(open.topicPartitions().contains(new TopicPartition(topic, 0)),
                      "describeTransactions partitions " + open.topicPartitions());
                check(admin.listTransactions().all().get(30, TimeUnit.SECONDS).stream()
                        .anyMatch(l -> l.transactionalId().equals(txnId)), "listTransactions");
                List<ProducerState> states = admin.describeProducers(List.of(new TopicPartition(topic, 0)))
                        .partitionResult(new TopicPartition(topic, 0)).get(30, TimeUnit.SECONDS).activeProducers();
                check(states.size() == 1 && states.get(0).currentTransactionStartOffset().orElse(-1L) == 0L,
                      "describeProducers " + states);
                producer.commitTransaction();

                producer.beginTransaction();
                for (int i = 0; i < 5; i++) producer.send(new ProducerRecord<>(topic, "a" + i));
                producer.sendOffsetsToTransaction(Map.of(in0, new OffsetAndMetadata(99)),
                        new ConsumerGroupMetadata(group));
                producer.flush();
                producer.abortTransaction();
            }
            Map<TopicPartition, OffsetAndMetadata> committed = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            check(committed.get(in0) != null && committed.get(in0).offset() == 10,
                  "offsets after commit then abort: " + committed);
        }
        Properties c = new Properties();
        c.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        c.put(ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed");
        c.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        c.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        List<String> values = new ArrayList<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(c)) {
            TopicPartition tp = new TopicPartition(topic, 0);
            consumer.assign(List.of(tp));
            consumer.seekToBeginning(List.of(tp));
            long deadline = System.currentTimeMillis() + 10_000;
            while (System.currentTimeMillis() < deadline && consumer.position(tp) < 17) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(200))) values.add(r.value());
            }
        }
        check(values.size() == 10 && values.stream().allMatch(v -> v.startsWith("c")),
              "read_committed saw " + values);
        System.out.println("transactions: commit, abort, offsets and operator APIs ok");
    }
}
