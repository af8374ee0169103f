// The ambient module declarations of test/types (s3rver ships no types), which test/helpers/s3.ts needs:
// bench/tsconfig.json includes test/helpers but not test/types.
/// <reference path="../test/types/s3rver.d.ts" />
