DROP TRIGGER grades_count_day;
DROP TABLE grader_day_counts;
