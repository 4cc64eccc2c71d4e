import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.sql.Statement;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;

/**
 * The PostgreSQL JDBC driver (pgjdbc, as DBeaver, BI tools and Java services use it) against
 * Weir's SQL listener: connect with any user, read the server's metadata, define a source and
 * an aggregating view, write through a prepared INSERT (extended protocol, server-side
 * prepared after the driver's threshold), read the view until it shows every row with typed
 * getters, ask DatabaseMetaData for the tables and the view's columns (what a tool's tree
 * shows), and get a SQLException with the SQLSTATE for bad SQL. Asserts; prints OK at the end.
 *
 * Usage: WeirJdbc HOST:PORT TOPIC
 */
public class WeirJdbc {
    static void check(boolean ok, String what) {
        if (!ok) {
            throw new AssertionError(what);
        }
    }

    public static void main(String[] args) throws Exception {
        String url = "jdbc:postgresql://" + args[0] + "/weir";
        String topic = args[1];
        Properties props = new Properties();
        props.setProperty("user", "jdbc_tester");
        props.setProperty("connectTimeout", "15");
        try (Connection c = DriverManager.getConnection(url, props)) {
            DatabaseMetaData meta = c.getMetaData();
            System.out.println("server: " + meta.getDatabaseProductName() + " "
                    + meta.getDatabaseProductVersion());
            check(c.isValid(5), "connection valid");

            try (Statement s = c.createStatement()) {
                s.execute("CREATE SOURCE jdbc_orders (id BIGINT NOT NULL, customer VARCHAR, "
                        + "amount DOUBLE) WITH (topic = '" + topic + "', format = 'json')");
                s.execute("CREATE MATERIALIZED VIEW jdbc_totals AS SELECT customer, "
                        + "count(*) AS n, sum(amount) AS total FROM jdbc_orders GROUP BY customer");
            }

            // More executions than the driver's prepareThreshold (5): it switches to a named
            // server-side statement with binary parameters.
            try (PreparedStatement p = c.prepareStatement(
                    "INSERT INTO jdbc_orders (id, customer, amount) VALUES (?, ?, ?)")) {
                for (int i = 0; i < 12; i++) {
                    p.setLong(1, i);
                    p.setString(2, "c" + (i % 3));
                    p.setDouble(3, i * 1.5);
                    check(p.executeUpdate() == 1, "one row inserted");
                }
            }

            List<String> rows = new ArrayList<>();
            long deadline = System.currentTimeMillis() + 60_000;
            while (true) {
                rows.clear();
                long count = 0;
                try (PreparedStatement q = c.prepareStatement(
                        "SELECT customer, n, total FROM jdbc_totals WHERE n >= ? ORDER BY customer")) {
                    q.setLong(1, 1);
                    try (ResultSet r = q.executeQuery()) {
                        ResultSetMetaData m = r.getMetaData();
                        check(m.getColumnCount() == 3, "three columns");
                        check(m.getColumnName(2).equals("n"), "column n: " + m.getColumnName(2));
                        while (r.next()) {
                            rows.add(r.getString(1) + " " + r.getLong(2) + " " + r.getDouble(3));
                            count += r.getLong(2);
                        }
                    }
                }
                if (count == 12) {
                    break;
                }
                check(System.currentTimeMillis() < deadline, "the view never showed 12 rows: " + rows);
                Thread.sleep(100);
            }
            System.out.println("view: " + rows);
            // c0: ids 0,3,6,9 (0+4.5+9+13.5); c1: 1,4,7,10; c2: 2,5,8,11.
            check(rows.equals(List.of("c0 4 27.0", "c1 4 33.0", "c2 4 39.0")), "totals " + rows);

            List<String> tables = new ArrayList<>();
            try (ResultSet t = meta.getTables(null, null, "jdbc_%", null)) {
                while (t.next()) {
                    tables.add(t.getString("TABLE_NAME") + ":" + t.getString("TABLE_TYPE"));
                }
            }
            System.out.println("tables: " + tables);
            check(tables.stream().anyMatch(t -> t.startsWith("jdbc_orders:")), "source listed " + tables);
            check(tables.stream().anyMatch(t -> t.startsWith("jdbc_totals:")), "view listed " + tables);

            List<String> columns = new ArrayList<>();
            try (ResultSet col = meta.getColumns(null, null, "jdbc_totals", null)) {
                while (col.next()) {
                    columns.add(col.getString("COLUMN_NAME") + ":" + col.getString("TYPE_NAME"));
                }
            }
            System.out.println("columns: " + columns);
            check(columns.size() == 3 && columns.get(0).startsWith("customer:")
                    && columns.get(1).startsWith("n:"), "view columns " + columns);

            try (Statement s = c.createStatement()) {
                s.executeQuery("SELEKT 1");
                check(false, "bad SQL accepted");
            } catch (SQLException e) {
                System.out.println("bad SQL: " + e.getSQLState() + " " + e.getMessage());
                check("42601".equals(e.getSQLState()), "syntax error SQLSTATE " + e.getSQLState());
            }
            check(c.isValid(5), "connection still valid after an error");
        }
        System.out.println("OK");
    }
}
