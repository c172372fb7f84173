// Schedules both ways, as Knative's PingSource webhook judges them. Its rules,
// from the upstream sources (knative/eventing pkg/apis/sources/v1/ping_validation.go
// and ping_defaults.go, as changed by knative/eventing#7394 "Support for seconds
// field in PingSource schedule", Eventing 1.13; robfig/cron v3.0.1 parser.go):
//
//   errs = validateDescriptor(schedule)      // strings.Contains(schedule, "@every") → "unsupported descriptor @every"
//   if cs.Timezone != "" { schedule = "CRON_TZ=" + cs.Timezone + " " + schedule }
//   parser := cron.NewParser(cron.SecondOptional | cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
//   an error starting "provided bad location" → apis.ErrInvalidValue(err, "timezone"), any other → (err, "schedule")
//   (ping_defaults.go: an empty schedule becomes "* * * * *" before any of this)
//
// robfig/cron's Parser.Parse with those options:
//   - a "TZ=" or "CRON_TZ=" prefix up to the first space names a zone for time.LoadLocation
//     (IANA database, case-sensitive; "UTC" and "Local" by name);
//   - "@" starts a descriptor, matched exactly: @yearly @annually @monthly @weekly @daily
//     @midnight @hourly, or @every <Go duration>; anything else is "unrecognized descriptor";
//   - otherwise 5 fields (seconds then 0) or 6 with seconds first: "expected 5 to 6 fields";
//   - a field is a comma list of ranges: * or ? (in any field; whatever follows "*-" is
//     ignored), N, or N-M, each with an optional /step ("N/step" is N-max/step);
//   - second 0-59, minute 0-59, hour 0-23, day 1-31, month 1-12 or JAN-DEC, weekday 0-6
//     (no 7) or SUN-SAT; names match whole and in any case;
//   - numbers go through strconv.Atoi: "+5" and "05" pass; Quartz's L, W, # and Jenkins' H do not.
//
// `error` is the apis.FieldError text the webhook answers, which the API server
// wraps as `admission webhook "validation.webhook.eventing.knative.dev" denied
// the request: validation failed: <error>`.

export interface AcceptedCase {
  schedule: string;
  timezone?: string;
  why: string;
}

export interface RefusedCase extends AcceptedCase {
  error: string;
}

export const ACCEPTED: AcceptedCase[] = [
  { schedule: '*/2 * * * *', why: 'upstream test "valid spec"' },
  { schedule: '10 0/5 * * * ?', why: 'upstream test "valid spec with schedule including seconds"' },
  { schedule: '*/2 * * * *', timezone: 'Europe/Paris', why: 'upstream test "valid spec with timezone"' },
  { schedule: '*/10 * * * * *', why: 'six fields: every ten seconds' },
  { schedule: '0 30 9 * * MON-FRI', why: 'six fields with weekday names' },
  { schedule: '0 3 * * mon-fri', why: 'names in any case' },
  { schedule: '0 0 1 JUL *', why: 'month name' },
  { schedule: '0 0 ? * *', why: '? for a day' },
  { schedule: '? * * * *', why: '? in any field' },
  { schedule: '5-50/15 * * * *', why: 'range with a step' },
  { schedule: '5/15 * * * *', why: 'N/step: from N to the maximum' },
  { schedule: '0,30 8-18 * * 1-5', why: 'lists and ranges' },
  { schedule: '*-5 * * * *', why: 'robfig ignores what follows "*-"' },
  { schedule: '+5 05 * * *', why: 'strconv.Atoi takes a sign and leading zeros' },
  ...['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'].map((schedule) => ({ schedule, why: 'descriptor' })),
  { schedule: 'CRON_TZ=Asia/Tokyo 0 9 * * *', why: 'a zone prefix without spec.timezone' },
  { schedule: 'TZ=UTC @daily', why: 'TZ= prefix before a descriptor' },
  { schedule: '0 9 * * *', timezone: 'US/Eastern', why: 'an alias of the IANA database' },
  { schedule: '0 9 * * *', timezone: 'UTC', why: 'UTC by name' },
];

export const REFUSED: RefusedCase[] = [
  { schedule: '2', error: 'invalid value: expected 5 to 6 fields, found 1: [2]: spec.schedule', why: 'upstream test "invalid schedule"' },
  {
    schedule: '*/2 * * * *',
    timezone: 'Knative/Land',
    error: 'invalid value: provided bad location Knative/Land: unknown time zone Knative/Land: spec.timezone',
    why: 'upstream test "valid spec with invalid timezone"',
  },
  { schedule: '@every 2h', error: 'invalid value: unsupported descriptor @every: spec.schedule', why: 'upstream test "unsupported @every descriptor"' },
  { schedule: '@every 2h', timezone: 'Europe/Paris', error: 'invalid value: unsupported descriptor @every: spec.schedule', why: 'upstream test "unsupported @every descriptor with TZ"' },
  {
    schedule: '@every 2x',
    error: 'invalid value: failed to parse duration @every 2x: time: unknown unit "x" in duration "2x": spec.schedule\ninvalid value: unsupported descriptor @every: spec.schedule',
    why: 'both errors, sorted by message',
  },
  { schedule: '* * * *', error: 'invalid value: expected 5 to 6 fields, found 4: [* * * *]: spec.schedule', why: 'four fields' },
  { schedule: '0 0 12 * * ? 2027', error: 'invalid value: expected 5 to 6 fields, found 7: [0 0 12 * * ? 2027]: spec.schedule', why: 'Quartz year field' },
  { schedule: '@HOURLY', error: 'invalid value: unrecognized descriptor: @HOURLY: spec.schedule', why: 'descriptors are case-sensitive' },
  { schedule: '@fortnightly', error: 'invalid value: unrecognized descriptor: @fortnightly: spec.schedule', why: 'no such descriptor' },
  { schedule: '0 0 L * *', error: 'invalid value: failed to parse int from L: strconv.Atoi: parsing "L": invalid syntax: spec.schedule', why: 'Quartz L' },
  { schedule: '0 0 15W * *', error: 'invalid value: failed to parse int from 15W: strconv.Atoi: parsing "15W": invalid syntax: spec.schedule', why: 'Quartz W' },
  { schedule: '0 0 * * 5#3', error: 'invalid value: failed to parse int from 5#3: strconv.Atoi: parsing "5#3": invalid syntax: spec.schedule', why: 'Quartz #' },
  { schedule: 'H * * * *', error: 'invalid value: failed to parse int from H: strconv.Atoi: parsing "H": invalid syntax: spec.schedule', why: 'Jenkins H' },
  { schedule: '0 0 * * 7', error: 'invalid value: end of range (7) above maximum (6): 7: spec.schedule', why: 'Sunday is 0 only' },
  { schedule: '61 * * * *', error: 'invalid value: end of range (61) above maximum (59): 61: spec.schedule', why: 'minute out of range' },
  { schedule: '0 0 0 * *', error: 'invalid value: beginning of range (0) below minimum (1): 0: spec.schedule', why: 'day 0' },
  { schedule: '10-5 * * * *', error: 'invalid value: beginning of range (10) beyond end of range (5): 10-5: spec.schedule', why: 'reversed range' },
  { schedule: '*/0 * * * *', error: 'invalid value: step of range should be a positive number: */0: spec.schedule', why: 'step 0' },
  { schedule: '1-2-3 * * * *', error: 'invalid value: too many hyphens: 1-2-3: spec.schedule', why: 'two hyphens' },
  { schedule: '0 JAN * * *', error: 'invalid value: failed to parse int from JAN: strconv.Atoi: parsing "JAN": invalid syntax: spec.schedule', why: 'names only in their own field' },
  { schedule: '0 9 * * *', timezone: 'europe/paris', error: 'invalid value: provided bad location europe/paris: unknown time zone europe/paris: spec.timezone', why: 'zone names are case-sensitive' },
  { schedule: '0 9 * * *', timezone: '../etc/passwd', error: 'invalid value: provided bad location ../etc/passwd: time: invalid location name: spec.timezone', why: 'not a zone name' },
  {
    schedule: 'CRON_TZ=Mars/Olympus 0 9 * * *',
    error: 'invalid value: provided bad location Mars/Olympus: unknown time zone Mars/Olympus: spec.timezone',
    why: "the prefix's zone is reported on spec.timezone",
  },
  {
    schedule: 'CRON_TZ=UTC 0 9 * * *',
    timezone: 'Europe/Paris',
    error: 'invalid value: failed to parse int from CRON_TZ=UTC: strconv.Atoi: parsing "CRON_TZ=UTC": invalid syntax: spec.schedule',
    why: 'a zone both ways: the second prefix becomes the seconds field',
  },
];
