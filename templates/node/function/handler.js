'use strict';

// Called once per request.
//   event.body     parsed body: object for JSON and form posts, string for text/*,
//                  Buffer for anything else (RAW_BODY=true: always a Buffer)
//   event.headers  request headers, lower-case names
//   event.method   "GET", "POST", ...
//   event.query    query arguments; a repeated key gives an array
//   event.path     "/" or "/sub/path"
// Return a value (objects and arrays are sent as JSON), or use
// context.status(code).headers({...}).succeed(value) / context.fail(err).
module.exports = async (event, context) => {
  const name = event.query.name || 'world';
  return context
    .status(200)
    .succeed({ message: `Hello, ${name}!`, method: event.method, path: event.path });
};
