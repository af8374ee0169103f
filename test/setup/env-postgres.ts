process.env.PARLEY_TEST_DB = "postgres";
