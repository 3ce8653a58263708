ALTER TABLE one_time_codes DROP COLUMN requested_from;
ALTER TABLE one_time_codes DROP COLUMN requested_in;
