// tally.js
