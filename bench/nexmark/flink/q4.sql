-- AVG over DOUBLE: Flink's AVG of a BIGINT is a BIGINT (truncated); Weir's is a float.
CREATE TEMPORARY TABLE nexmark_q4 (category BIGINT, `avg` DOUBLE) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q4
SELECT
    Q.category,
    AVG(CAST(Q.final AS DOUBLE)) as `avg`
FROM (
    SELECT
        MAX(B.price) AS final, A.category
    FROM
        auction A,
        bid B
    WHERE
        A.id = B.auction AND
        B.date_time BETWEEN A.date_time AND A.expires
    GROUP BY
        A.id, A.category
    ) Q
GROUP BY
    Q.category;
