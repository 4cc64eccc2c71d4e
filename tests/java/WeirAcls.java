import java.util.Collection;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutionException;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.Producer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.errors.ClusterAuthorizationException;
import org.apache.kafka.common.errors.TopicAuthorizationException;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;
import org.apache.kafka.common.serialization.StringSerializer;

/**
 * The Java AdminClient's ACL API against Weir: a super user creates LITERAL and PREFIXED
 * ALLOW and DENY bindings, describes them with ANY and MATCH filters and deletes by filter; a
 * user holding only those ACLs writes where they allow and is refused the rest with Kafka's
 * exceptions. Args: bootstrap (SASL_PLAINTEXT), topic (starts with "java-"), super user,
 * its password, user, its password. Prints OK.
 */
public class WeirAcls {
    static Properties props(String bootstrap, String user, String password) {
        Properties p = new Properties();
        p.put("bootstrap.servers", bootstrap);
        p.put("security.protocol", "SASL_PLAINTEXT");
        p.put("sasl.mechanism", "SCRAM-SHA-256");
        p.put("sasl.jaas.config", "org.apache.kafka.common.security.scram.ScramLoginModule required "
                + "username=\"" + user + "\" password=\"" + password + "\";");
        p.put("request.timeout.ms", "15000");
        p.put("default.api.timeout.ms", "30000");
        return p;
    }

    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] a) throws Exception {
        String bootstrap = a[0], topic = a[1], su = a[2], suPassword = a[3], user = a[4],
                userPassword = a[5];
        String principal = "User:" + user;
        AclBinding read = new AclBinding(
                new ResourcePattern(ResourceType.TOPIC, topic, PatternType.LITERAL),
                new AccessControlEntry(principal, "*", AclOperation.READ, AclPermissionType.ALLOW));
        AclBinding write = new AclBinding(
                new ResourcePattern(ResourceType.TOPIC, "java-", PatternType.PREFIXED),
                new AccessControlEntry(principal, "*", AclOperation.WRITE, AclPermissionType.ALLOW));
        AclBinding denyGroups = new AclBinding(
                new ResourcePattern(ResourceType.GROUP, "g-", PatternType.PREFIXED),
                new AccessControlEntry(principal, "*", AclOperation.ALL, AclPermissionType.DENY));
        AclBindingFilter usersAcls = new AclBindingFilter(ResourcePatternFilter.ANY,
                new AccessControlEntryFilter(principal, null, AclOperation.ANY, AclPermissionType.ANY));
        try (Admin admin = Admin.create(props(bootstrap, su, suPassword))) {
            admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get();
            admin.createAcls(List.of(read, write, denyGroups)).all().get();
            Collection<AclBinding> mine = admin.describeAcls(usersAcls).values().get();
            check(mine.size() == 3 && mine.containsAll(List.of(read, write, denyGroups)),
                    "described " + mine);
            Collection<AclBinding> matching = admin.describeAcls(new AclBindingFilter(
                    new ResourcePatternFilter(ResourceType.TOPIC, topic, PatternType.MATCH),
                    AccessControlEntryFilter.ANY)).values().get();
            check(matching.size() == 2 && matching.containsAll(List.of(read, write)),
                    "MATCH " + matching);
        }
        // WRITE on the prefix lets the user produce (idempotent: KIP-679's WRITE on a topic).
        Properties pp = props(bootstrap, user, userPassword);
        pp.put("key.serializer", StringSerializer.class.getName());
        pp.put("value.serializer", StringSerializer.class.getName());
        try (Producer<String, String> producer = new KafkaProducer<>(pp)) {
            producer.send(new ProducerRecord<>(topic, "k", "v")).get();
        }
        try (Admin admin = Admin.create(props(bootstrap, user, userPassword))) {
            try {
                admin.createTopics(List.of(new NewTopic(topic + "-x", 1, (short) 1))).all().get();
                check(false, "CreateTopics was allowed without CREATE");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof TopicAuthorizationException, "create: " + e.getCause());
            }
            try {
                admin.describeAcls(AclBindingFilter.ANY).values().get();
                check(false, "DescribeAcls was allowed without DESCRIBE on the cluster");
            } catch (ExecutionException e) {
                check(e.getCause() instanceof ClusterAuthorizationException,
                        "describeAcls: " + e.getCause());
            }
        }
        try (Admin admin = Admin.create(props(bootstrap, su, suPassword))) {
            Collection<AclBinding> deleted = admin.deleteAcls(List.of(new AclBindingFilter(
                    ResourcePatternFilter.ANY,
                    new AccessControlEntryFilter(principal, null, AclOperation.ANY,
                            AclPermissionType.DENY)))).all().get();
            check(deleted.size() == 1 && deleted.contains(denyGroups), "deleted " + deleted);
            Collection<AclBinding> left = admin.describeAcls(usersAcls).values().get();
            check(left.size() == 2 && left.containsAll(List.of(read, write)), "left " + left);
        }
        System.out.println("OK");
    }
}
