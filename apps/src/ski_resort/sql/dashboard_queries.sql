-- The ski_resort dashboard's queries (`ski_resort dashboard`): the quickstart's Streamlit
-- views, over the landed tables. Each query follows a `-- name:` line; the dashboard runs
-- them through Snowflake's SQL API, on a real account or on the emulator (which runs them in
-- SQLite), so they keep to SQL both understand:
--   * the day and hour of a TIMESTAMP_NTZ are read from its text form
--     (`CAST(t AS VARCHAR)` is `YYYY-MM-DD HH24:MI:SS…` under Snowflake's default
--     TIMESTAMP_NTZ output format);
--   * CASE instead of IFF / COUNT_IF, `COUNT(DISTINCT a || '|' || b)` instead of
--     `COUNT(DISTINCT a, b)`, `* 1.0` before a division.
-- The dynamic tables in dashboard.sql compute the same views with Snowflake's own functions.

-- name: revenue_by_day
-- Ticket and season pass revenue per day (PASS_VS_TICKET_REVENUE).
SELECT DAY, SUM(TICKET_USD) AS TICKET_USD, SUM(PASS_USD) AS PASS_USD,
       SUM(TICKETS) AS TICKETS, SUM(PASSES) AS PASSES
FROM (
    SELECT SUBSTR(CAST(PURCHASE_TIME AS VARCHAR), 1, 10) AS DAY,
           PRICE_USD AS TICKET_USD, 0 AS PASS_USD, 1 AS TICKETS, 0 AS PASSES
    FROM RESORT_TICKET
    UNION ALL
    SELECT SUBSTR(CAST(PURCHASE_TIME AS VARCHAR), 1, 10) AS DAY,
           0 AS TICKET_USD, PRICE_USD AS PASS_USD, 0 AS TICKETS, 1 AS PASSES
    FROM SEASON_PASS
) SALES
GROUP BY DAY
ORDER BY DAY;

-- name: busiest_lifts
-- The ten busiest lifts (LIFT_POPULARITY).
SELECT RESORT, LIFT, COUNT(*) AS RIDES, COUNT(DISTINCT RFID) AS RIDERS
FROM LIFT_RIDE
GROUP BY RESORT, LIFT
ORDER BY RIDES DESC, RESORT, LIFT
LIMIT 10;

-- name: rides_by_resort_and_hour
-- Lift rides by resort and hour of the day (HOURLY_LIFT_RIDES).
SELECT SUBSTR(CAST(RIDE_TIME AS VARCHAR), 12, 2) AS HOUR_OF_DAY, RESORT, COUNT(*) AS RIDES
FROM LIFT_RIDE
GROUP BY HOUR_OF_DAY, RESORT
ORDER BY HOUR_OF_DAY, RESORT;

-- name: ski_days_by_product
-- Ski days (rider × day) and rides by product: season pass holders vs day tickets
-- (RIDES_BY_PRODUCT).
SELECT CASE WHEN P.RFID IS NULL THEN 'Day ticket' ELSE 'Season pass' END AS PRODUCT,
       COUNT(DISTINCT R.RFID || '|' || SUBSTR(CAST(R.RIDE_TIME AS VARCHAR), 1, 10)) AS SKI_DAYS,
       COUNT(*) AS RIDES,
       COUNT(DISTINCT R.RFID) AS RIDERS
FROM LIFT_RIDE R
LEFT JOIN (SELECT DISTINCT RFID FROM SEASON_PASS) P ON P.RFID = R.RFID
GROUP BY PRODUCT
ORDER BY PRODUCT;
