-- Flink's window TVFs: HOP(TABLE bid, DESCRIPTOR(date_time), ...), grouped by window_start
-- and window_end (a window aggregate must name both; window_end = window_start + 10 s, so
-- the groups and the join are those of ../q5.sql).
CREATE TEMPORARY TABLE nexmark_q5 (auction BIGINT, num BIGINT) WITH ('connector' = 'blackhole');
INSERT INTO nexmark_q5
SELECT
    AuctionBids.auction, AuctionBids.num
FROM (
    SELECT
        auction,
        count(*) AS num,
        window_start AS starttime,
        window_end AS endtime
    FROM
        TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
    GROUP BY
        window_start,
        window_end,
        auction
) AS AuctionBids
JOIN (
    SELECT
        max(CountBids.num) AS maxn,
        CountBids.starttime_c,
        CountBids.endtime_c
    FROM (
        SELECT
            count(*) AS num,
            window_start AS starttime_c,
            window_end AS endtime_c
        FROM TABLE(HOP(TABLE bid, DESCRIPTOR(date_time), INTERVAL '2' SECOND, INTERVAL '10' SECOND))
        GROUP BY
            auction,
            window_start,
            window_end
        ) AS CountBids
    GROUP BY
        CountBids.starttime_c,
        CountBids.endtime_c
    ) AS MaxBids
ON
    AuctionBids.starttime = MaxBids.starttime_c AND
    AuctionBids.endtime = MaxBids.endtime_c AND
    AuctionBids.num >= MaxBids.maxn;
