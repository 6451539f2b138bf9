// Blinding: a second grader of the same images never receives or sees the first grader's
// answers or comment, neither on the page nor in any response the browser gets.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, test } from 'node:test';

import {
  checkedAnswers,
  logIn,
  openBrowser,
  pressKeys,
  recordGradeRequests,
  startDemoServer,
  visibleFieldNames,
  waitForGradedToday,
  waitForItem,
  withScreenshots,
} from './harness.js';

const ITEMS_BY_FIRST_GRADER = 3;
/** How many items the second grader may be served before the first grader's must all have come. */
const MAX_ITEMS_BY_SECOND_GRADER = 6;

let server;
before(async () => {
  server = await startDemoServer();
});
after(async () => {
  await server?.stop();
});

test('second grader sees nothing of first', { timeout: 120_000 }, async () => {
  const secret = `grader1-secret-comment-${randomBytes(8).toString('hex')}`;
  const first = await openBrowser();
  const second = await openBrowser();
  try {
    await withScreenshots('second grader sees nothing of first', () => ({ grader1: first.page, grader2: second.page }), async () => {
      // grader1 grades three images with answers no other grader gives here, and a unique comment.
      const firstSent = recordGradeRequests(first.page);
      await logIn(first.page, server.baseUrl, 'grader1', server.passwords.get('grader1'));
      await first.page.goto(`${server.baseUrl}/studies/demo/grade`);
      const firstItems = [];
      let itemId = null;
      for (let index = 0; index < ITEMS_BY_FIRST_GRADER; index++) {
        itemId = await waitForItem(first.page, itemId);
        firstItems.push(itemId);
        // Gradable, proliferative DR, severe DME, every lesion present.
        await pressKeys(first.page, '1', '5', '4', '1', '1', '1', '1', '1', 'Shift+Tab');
        await first.page.keyboard.type(secret);
        await pressKeys(first.page, 'Control+Enter');
        await waitForGradedToday(first.page, index + 1);
      }
      assert.equal(firstSent.length, ITEMS_BY_FIRST_GRADER);
      for (const body of firstSent) {
        assert.equal(body.comment, secret);
        assert.equal(body.answers.dr_severity, '4');
      }
      const firstStorage = await first.page.evaluate(() => JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }));
      assert.ok(!firstStorage.includes(secret), 'the comment is not kept in browser storage');

      // grader2 records every response body the browser receives, from the login on.
      const received = [];
      second.page.on('response', (response) => {
        received.push(
          response.body().then(
            (body) => ({ url: response.url(), body: body.toString('utf8') }),
            () => ({ url: response.url(), body: '' }),
          ),
        );
      });
      await logIn(second.page, server.baseUrl, 'grader2', server.passwords.get('grader2'));
      await second.page.goto(`${server.baseUrl}/studies/demo/grade`);

      const secondItems = [];
      itemId = null;
      while (secondItems.length < MAX_ITEMS_BY_SECOND_GRADER && !firstItems.every((id) => secondItems.includes(id))) {
        itemId = await waitForItem(second.page, itemId);
        secondItems.push(itemId);

        assert.deepEqual(await checkedAnswers(second.page), {}, `item ${itemId}: no option is chosen`);
        assert.deepEqual(await visibleFieldNames(second.page), ['gradability'], `item ${itemId}: only the first field is asked`);
        assert.equal(await second.page.inputValue('#comment'), '', `item ${itemId}: the comment box is empty`);
        const pageText = await second.page.evaluate(() => {
          const values = [...document.querySelectorAll('input, textarea')].map((input) => input.value);
          return `${document.documentElement.outerHTML}\n${document.body.innerText}\n${values.join('\n')}`;
        });
        assert.ok(!pageText.includes(secret), `item ${itemId}: the page contains grader1's comment`);

        // Gradable, no retinopathy, no DME, no lesion.
        await pressKeys(second.page, '1', '1', '1', '2', '2', '2', '2', '2', 'Enter');
        await waitForGradedToday(second.page, secondItems.length);
      }
      for (const id of firstItems) {
        assert.ok(secondItems.includes(id), `grader2 was never served item ${id} that grader1 graded (served: ${secondItems.join(', ')})`);
      }

      const bodies = await Promise.all(received);
      assert.ok(bodies.some(({ url }) => url.endsWith('/api/v1/projects/demo/next')), 'the recording saw the next-item responses');
      for (const { url, body } of bodies) {
        assert.ok(!body.includes(secret), `the response of ${url} contains grader1's comment`);
        assert.doesNotMatch(body, /"answers"\s*:/, `the response of ${url} contains answers`);
        assert.doesNotMatch(body, /"dr_severity"\s*:\s*"4"/, `the response of ${url} contains grader1's severity answer`);
        assert.doesNotMatch(body, /"comment"\s*:/, `the response of ${url} contains a comment`);
      }
      assert.equal(first.errors.length + second.errors.length, 0, `script errors: ${[...first.errors, ...second.errors].join('; ')}`);
    });
  } finally {
    await first.close();
    await second.close();
  }
});
