// The KRaft quorum as the active controller sees it, through a broker (Kafka's Admin
// API, DescribeQuorum): run as a single source file by the stack tool (tools/stack/quorum.ts)
// with the fetched Kafka jars on the class path, so no build step and no extra jar.
// Prints "leader=<id> epoch=<n> hw=<offset>", then one "voter=<id> leo=<offset>" per voter.

import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.QuorumInfo;

public class QuorumStatus {
  public static void main (String[] args) throws Exception {
    Properties props = new Properties();
    props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
    props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "5000");
    props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "10000");
    try (Admin admin = Admin.create(props)) {
      QuorumInfo q = admin.describeMetadataQuorum().quorumInfo().get();
      System.out.println("leader=" + q.leaderId() + " epoch=" + q.leaderEpoch() + " hw=" + q.highWatermark());
      for (QuorumInfo.ReplicaState v : q.voters()) System.out.println("voter=" + v.replicaId() + " leo=" + v.logEndOffset());
    }
  }
}
