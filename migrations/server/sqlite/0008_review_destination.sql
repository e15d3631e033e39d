-- Where each record's latest signed version says the patient was taken, when the crew picked
-- the destination from the trust's list: its ODS code and name, so supervisors can filter
-- the review queue by destination. Records signed before destinations had codes have none.
ALTER TABLE records ADD COLUMN destination_ods TEXT;
ALTER TABLE records ADD COLUMN destination_name TEXT;
CREATE INDEX records_destination ON records (destination_ods) WHERE destination_ods IS NOT NULL;
