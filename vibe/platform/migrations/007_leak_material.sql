-- The tutor's outbound check (issue 15) protects more than reference solutions: what a cut
-- reply was turning into ('reference_solution', 'instructions', 'hint_ladder',
-- 'hidden_tests'; NULL: not cut, or stored before this migration).
ALTER TABLE messages
    ADD COLUMN leak_material TEXT CHECK (
        leak_material IS NULL OR leak_material IN ('reference_solution', 'instructions', 'hint_ladder', 'hidden_tests')
    );
