// The Java client's describeTopics (kafka-clients 4.3 sends DescribeTopicPartitions, API 75,
// when the broker lists it, paging by partitionSizeLimitPerResponse) against Weir.
// Usage: java WeirDescribe BOOTSTRAP PAGE_SIZE TOPIC...
// Prints one line per partition: "topic partition leader replicas isr elr lastKnownElr"
// (node id lists comma-separated, "-" when empty), then "OK".

import java.util.*;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;

import org.apache.kafka.clients.admin.*;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;

public class WeirDescribe {
    static String ids(List<Node> nodes) {
        if (nodes == null || nodes.isEmpty()) {
            return "-";
        }
        return nodes.stream().map(n -> Integer.toString(n.id())).collect(Collectors.joining(","));
    }

    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        int pageSize = Integer.parseInt(args[1]);
        List<String> topics = Arrays.asList(args).subList(2, args.length);
        Properties a = new Properties();
        a.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(a)) {
            Map<String, TopicDescription> described = admin
                    .describeTopics(topics, new DescribeTopicsOptions().partitionSizeLimitPerResponse(pageSize))
                    .allTopicNames().get(60, TimeUnit.SECONDS);
            for (String t : topics) {
                TopicDescription d = described.get(t);
                if (d == null) {
                    System.err.println("FAILED: no description of " + t);
                    System.exit(1);
                }
                for (TopicPartitionInfo p : d.partitions()) {
                    System.out.println(t + " " + p.partition() + " "
                            + (p.leader() == null ? -1 : p.leader().id()) + " " + ids(p.replicas()) + " "
                            + ids(p.isr()) + " " + ids(p.elr()) + " " + ids(p.lastKnownElr()));
                }
            }
        }
        System.out.println("OK");
    }
}
