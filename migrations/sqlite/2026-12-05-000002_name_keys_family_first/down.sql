-- The keys are computed again, in the earlier form, by the application that runs after this.
UPDATE users SET name_key = '';
