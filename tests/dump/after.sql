-- The restored database keeps working: triggers, counts, ids, new segments.
DELETE FROM crm.contacts WHERE id = 3;
SELECT segments.segments_of(3::bigint);
SELECT name, member_count, (SELECT count(*) FROM segments.members m WHERE m.segment_id = s.id) AS actual
  FROM segments.segment s ORDER BY id;
SELECT segments.create_segment('After restore', 'score < 5') AS new_id;
SELECT segments.refresh_segment('Engaged DE');
